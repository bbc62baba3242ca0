"""clusterd.alerts: which events are reported by whom, the environment a program gets,
and the runner: a failing, hanging or untrusted program is logged and never blocks."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from pathlib import Path

import pytest
from clusterd.alerts import (
    AlertConf,
    AlertEvent,
    Alerts,
    alerts_of,
    fence_events,
    iso_utc_ms,
    service_events,
)
from clusterd.conf import parse
from clusterd.errors import ConfigError

NODES = '<clusternodes><clusternode name="n1" nodeid="1"/></clusternodes>'


def conf(alerts: str) -> bytes:
    return (f'<cluster name="c" config_version="1"><clusterd>{alerts}</clusterd>{NODES}'
            '</cluster>').encode()


def test_alerts_are_read_with_their_defaults():
    root = parse(conf('<alert name="a" program="/usr/local/sbin/a"/>'
                      '<alert name="b" program="/usr/local/sbin/b" recipient="http://x/h" '
                      'timeout="7" events="fence service"/>')).root
    a, b = alerts_of(root)
    assert a == AlertConf("a", "/usr/local/sbin/a")
    assert a.timeout == 30 and a.events == {"node", "quorum", "fence", "service"}
    assert b.recipient == "http://x/h" and b.timeout == 7 and b.events == {"fence", "service"}


@pytest.mark.parametrize(("alert", "words"), [
    ('<alert name="a" program="logger -t x"/>', "has arguments"),
    ('<alert name="a" program="/bin/sh"/>', "shell or interpreter"),
    ('<alert name="a" program="/usr/local/sbin/a" events="node disk"/>', "unknown disk"),
    ('<alert name="a" program="/usr/local/sbin/a" timeout="0"/>', "not 1..3600"),
    ('<alert name="a" program="/x"/><alert name="a" program="/y"/>', "defined twice"),
    ('<alert name="a b" program="/x"/>', "alert name"),
    ('<alert program="/x"/>', "alert"),
])
def test_bad_alerts_are_refused_with_what_to_fix(alert, words):
    with pytest.raises(ConfigError) as err:
        parse(conf(alert))
    assert words in str(err.value)


def row(state, owner, last=None):
    return {"state": state, "owner": owner, "last_owner": last}


def test_service_events_come_from_the_node_they_concern():
    before = {"service:web": row("started", "n1"), "service:db": row("started", "n2")}
    after = {"service:web": row("started", "n2", "n1"), "service:db": row("stopped", None, "n2")}
    # the new owner reports a move; the old owner says nothing about a move away
    assert [(e.state, e.node, e.service) for e in service_events("n2", before, after)] == [
        ("started", "n2", "web"), ("stopped", "n2", "db")]
    assert "was on n1" in service_events("n2", before, after)[0].desc
    assert service_events("n1", before, after) == []
    assert service_events("n3", before, after) == []
    assert service_events("n2", after, after) == []          # nothing changed
    assert service_events("n2", {}, after) == []             # no earlier snapshot


def test_fence_events_only_from_the_quorate_coordinator():
    before = {"n3": {"state": "running", "op_id": 4}}
    after = {"n3": {"state": "done", "op_id": 4, "method": "ipmi", "acked": False}}
    assert fence_events("n1", False, before, after) == []
    (e,) = fence_events("n1", True, before, after)
    assert (e.kind, e.state, e.node) == ("fence", "fenced", "n3") and "ipmi" in e.desc
    failed = {"n3": {"state": "failed", "op_id": 4, "last_error": "timed out"}}
    (f,) = fence_events("n1", True, before, failed)
    assert f.state == "failed" and "timed out" in f.desc
    assert fence_events("n1", True, after, after) == []


def _program(tmp: Path, name: str, body: str) -> str:
    os.chmod(tmp, 0o755)
    path = tmp / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return str(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="trusted programs must be root-owned")
def test_the_runner_delivers_in_order_and_logs_failures_hangs_and_missing_programs(
        tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="clusterd.alerts")
    out = tmp_path / "out"
    good = _program(tmp_path, "good", f'echo "$CLUSTER_ALERT_SEQUENCE $CLUSTER_ALERT_KIND '
                    f'$CLUSTER_ALERT_STATE $CLUSTER_ALERT_RECIPIENT $CLUSTER_ALERT_LOCAL_NODE" '
                    f'>> {out}')
    bad = _program(tmp_path, "bad", "echo oops >&2; exit 3")
    hang = _program(tmp_path, "hang", f"echo $$ > {tmp_path}/hang.pid; sleep 600")

    async def main() -> None:
        alerts = Alerts("n1", "c")
        alerts.configure([AlertConf("good", good, "http://r/"),
                          AlertConf("bad", bad, events=frozenset({"node"})),
                          AlertConf("hang", hang, timeout=1),
                          AlertConf("gone", str(tmp_path / "nope"))], "c")
        for i in range(3):
            alerts.emit(AlertEvent("node" if i != 1 else "fence", f"s{i}", f"d{i}"))
        deadline = asyncio.get_running_loop().time() + 20
        while alerts.status()["runs"] < 10 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        while (not out.exists() or len(out.read_text().splitlines()) < 3) and \
                asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        status = alerts.status()
        await alerts.close()
        assert status["configured"] == ["bad", "gone", "good", "hang"]
    asyncio.run(main())
    assert out.read_text().splitlines() == ["1 node s0 http://r/ n1", "2 fence s1 http://r/ n1",
                                            "3 node s2 http://r/ n1"]
    text = caplog.text
    assert "alert bad (node s0): " + bad + " exited 3: oops" in text
    assert "alert hang (node s0): " + hang + " ran over its 1s timeout" in text
    assert "alert gone (node s0) not run" in text
    pid = int((tmp_path / "hang.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_full_queue_drops_and_counts_without_blocking():
    async def main() -> dict:
        alerts = Alerts("n1", "c")
        alerts.configure([AlertConf("slow", "/nonexistent/slow")], "c")
        for i in range(1000):
            alerts.emit(AlertEvent("node", "failed", str(i)))
        status = alerts.status()
        await alerts.close()
        return status
    status = asyncio.run(main())
    assert status["dropped"] >= 1000 - 256 - 1


@pytest.mark.parametrize("at", [0.0, 1.0, 1.0005, 1.0004995, 1.9999996, 1.9999994,
                                1_733_600_000.123456, 1_733_600_000.9999995,
                                4_102_444_799.999, -1.25])
def test_the_alert_timestamp_is_what_datetime_would_print(at: float) -> None:
    from datetime import UTC, datetime  # the reference, here only
    assert iso_utc_ms(at) == datetime.fromtimestamp(at, UTC).isoformat(
        timespec="milliseconds")


def test_the_alert_timestamp_matches_datetime_on_random_times() -> None:
    import random
    from datetime import UTC, datetime
    rng = random.Random()
    for _ in range(20_000):
        at = rng.uniform(0, 4_102_444_800) if rng.random() < 0.5 else \
            rng.randrange(0, 2**32) + rng.randrange(0, 10**7) / 10**7
        assert iso_utc_ms(at) == datetime.fromtimestamp(at, UTC).isoformat(
            timespec="milliseconds"), at
