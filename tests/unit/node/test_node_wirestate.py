"""What the wire keeps across restarts (``node/wirestate.py``) and what the node does with
the core's wire events (``cycle.fold_events``): persist the peers' records, and restart
above an incarnation a peer has seen."""

from __future__ import annotations

import logging
import os
import stat
import time

import pytest
from clusterd.membership.host import IncarnationOutdated, PeersSeen
from clusterd.node import cycle as c
from clusterd.node import wirestate as ws


def test_new_incarnation_is_above_the_persisted_one_and_the_clock(monkeypatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: 5_000_000_000)     # clock: 5 s after 1970
    assert ws.new_incarnation(0) == 5_000_000                        # microseconds
    assert ws.new_incarnation(9_000_000) == 9_000_001                # clock behind the file
    monkeypatch.setattr(time, "time_ns", lambda: 7_000_000_000_000)
    assert ws.new_incarnation(9_000_000) == 7_000_000_000            # clock ahead


def test_incarnation_file(tmp_path, caplog) -> None:
    state = str(tmp_path / "state")
    assert ws.read_incarnation(state, "n1") == 0                    # first start
    ws.save_incarnation(state, 1234)
    assert ws.read_incarnation(state, "n1") == 1234
    assert stat.S_IMODE(os.stat(os.path.join(state, "incarnation")).st_mode) == 0o640
    (tmp_path / "state" / "incarnation").write_text("garbage\n")
    with caplog.at_level(logging.WARNING, logger="clusterd.node.wirestate"):
        assert ws.read_incarnation(state, "n1") == 0
    assert "n1: ignoring unreadable" in caplog.text


def test_peers_file_round_trip(tmp_path) -> None:
    state = str(tmp_path / "state")
    assert ws.read_peers(state, "n1") == {}
    peers = {2: (1764100000123456, 3), 3: (17, 2)}
    ws.save_peers(state, peers)
    assert ws.read_peers(state, "n1") == peers
    assert stat.S_IMODE(os.stat(os.path.join(state, "peers.json")).st_mode) == 0o640


@pytest.mark.parametrize("content", [
    b"", b"[]", b'{"peers": []}', b'{"peers": {"x": {"incarnation": 1, "protocol": 3}}}',
    b'{"peers": {"2": {"incarnation": -1, "protocol": 3}}}',
    b'{"peers": {"2": {"incarnation": 1.5, "protocol": 3}}}',
    b'{"peers": {"2": {"incarnation": 1}}}', b"\xff\xfe",
])
def test_a_corrupt_peers_file_is_ignored_with_a_warning(tmp_path, caplog, content) -> None:
    (tmp_path / "peers.json").write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="clusterd.node.wirestate"):
        assert ws.read_peers(str(tmp_path), "n1") == {}
    assert "n1: ignoring unreadable" in caplog.text


def test_only_the_latest_peer_records_are_written() -> None:
    first, second = PeersSeen(((2, (5, 3)),)), PeersSeen(((2, (5, 3)), (3, (9, 3))))
    _state, actions = c.fold_events(c.NodeState(), [first, second])
    assert actions == [c.PersistPeers(second.peers)]


def test_an_outdated_incarnation_is_persisted_then_the_daemon_exits_to_restart() -> None:
    _state, actions = c.fold_events(c.NodeState(), [IncarnationOutdated(2, 900, 40)])
    assert [type(a) for a in actions] == [c.PersistIncarnation, c.Exit]
    persist, leave = actions
    assert persist.incarnation == 900 and leave.code == c.RESTART_EXIT != 0
    assert "node 2 has seen incarnation 900 of this node, above the running 40" in leave.reason
    assert ws.new_incarnation(persist.incarnation) > 900          # the next start
