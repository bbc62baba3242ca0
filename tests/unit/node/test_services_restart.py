"""The services glue while the daemon restarts keeping its services: it takes no command
from the coordinator (not even a stop), does not report itself as leaving (which would
make the coordinator move its services away), and re-announces nothing."""

from __future__ import annotations

import pytest
from clusterd.services.model import Command, CommandKind
from test_services_report_cadence import glue

STOP = Command(3, "3.7", "service:web", CommandKind.STOP)


@pytest.mark.parametrize(("phase", "executed", "leaving"), [
    ("running", ["3.7"], False),
    ("leaving", ["3.7"], True),        # a leave still takes the coordinator's stops
    ("restarting", [], False),         # a restart takes nothing: the next daemon decides
])
def test_commands_and_the_leaving_flag_by_phase(tmp_path, monkeypatch, phase, executed,
                                               leaving):
    g, _sent, _clock = glue(tmp_path, monkeypatch)
    g.port.phase = lambda: phase
    ran: list[str] = []
    g.executor.execute = lambda cmd: ran.append(cmd.op_id)
    g._on_command(STOP, 1)                       # node 1 coordinates view 3
    assert ran == executed
    assert g.report().leaving is leaving
