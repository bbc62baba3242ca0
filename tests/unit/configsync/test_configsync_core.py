"""ConfigSyncCore fed by hand: pull, chunking, integrity, validation, conflicts, propose."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from clusterd.configsync.core import ConfigSyncCore
from clusterd.configsync.model import ValidateConfig, sha256_hex
from clusterd.errors import ConfigError, ControlError, Problem
from clusterd.events import ConfigConflict, ConfigRejected, WriteConfig
from clusterd.wire.messages import CONFIG_CHUNK_BYTES, ConfigChunk, ConfigRequest

TOKEN = 1.0


def conf(version: int, body: str = "") -> bytes:
    return f"v={version}\n{body}".encode()


def validate(data: bytes) -> SimpleNamespace:
    m = re.match(rb"v=(\d+)\n", data)
    if m is None or b"BAD" in data:
        raise ConfigError([Problem("/cluster", "bad test config")])
    return SimpleNamespace(version=int(m.group(1)))


def core(nodeid: int, data: bytes | None) -> ConfigSyncCore:
    return ConfigSyncCore(nodeid, data, validate, TOKEN)


def transfer(puller: ConfigSyncCore, holder: ConfigSyncCore, out, now: float = 0.0):
    """Shuttle requests/chunks between two cores until quiet, answering the puller's
    ValidateConfig as a host does (the validator's result or error); return all events."""
    events = list(out.events)
    pending = list(out.sends)
    while pending:
        send = pending.pop(0)
        if isinstance(send.msg, ConfigRequest):
            reply = holder.on_message(puller.me, send.msg, now)
        else:
            reply = puller.on_message(holder.me, send.msg, now)
        for request in [e for e in reply.events if isinstance(e, ValidateConfig)]:
            try:
                outcome = validate(request.data)
            except ConfigError as exc:
                outcome = exc
            reply += puller.on_validated(request.sha256, outcome, now)
        events += reply.events
        pending += reply.sends
    return events


def test_higher_version_is_pulled_in_chunks_validated_and_written() -> None:
    big = conf(5, "x" * (3 * CONFIG_CHUNK_BYTES + 10))
    a, b = core(1, conf(4)), core(2, big)
    out = a.observe(2, 5, sha256_hex(big), 0.0)
    assert [type(s.msg) for s in out.sends] == [ConfigRequest] and a.status(0.0)["pulling"] == 5
    events = transfer(a, b, out)
    (write,) = [e for e in events if isinstance(e, WriteConfig)]
    assert write.data == big and write.version == 5 and "pulled from node 2" in write.reason
    assert a.running.version == 5 and a.holders(0.0) == 2


def test_lower_or_equal_adverts_pull_nothing() -> None:
    a = core(1, conf(4))
    assert not a.observe(2, 3, sha256_hex(conf(3)), 0.0).sends
    assert not a.observe(2, 4, sha256_hex(conf(4)), 0.0).sends


def test_same_version_other_content_is_a_conflict_reported_once() -> None:
    a = core(1, conf(4, "a"))
    other = sha256_hex(conf(4, "b"))
    out = a.observe(2, 4, other, 0.0)
    (ev,) = out.events
    assert isinstance(ev, ConfigConflict) and ev.peer == 2 and "refusing it" in ev.reason
    assert not out.sends and a.running.data == conf(4, "a")
    assert not a.observe(2, 4, other, 0.1).events, "reported again"
    assert a.status(0.1)["conflict"] == [{"node": 2, "version": 4, "sha256": other}]
    assert not a.held, "a conflict never makes a node step down by itself"


def test_invalid_newer_config_is_rejected_once_and_holds_the_node() -> None:
    bad = conf(6, "BAD")
    a, b = core(1, conf(5)), core(2, None)
    b.running = SimpleNamespace(version=6, sha256=sha256_hex(bad), data=bad)
    events = transfer(a, b, a.observe(2, 6, sha256_hex(bad), 0.0))
    (rej,) = [e for e in events if isinstance(e, ConfigRejected)]
    assert rej.version == 6 and "bad test config" in rej.reason
    assert a.running.version == 5 and a.held
    assert not a.observe(2, 6, sha256_hex(bad), 0.2).sends, "pulled a rejected config again"


def test_bytes_that_do_not_match_the_hash_are_rejected() -> None:
    a = core(1, conf(1))
    claimed = sha256_hex(conf(2, "real"))
    a.observe(2, 2, claimed, 0.0)
    out = a.on_message(2, ConfigChunk(2, claimed, 0, 8, conf(2, "fake")[:8]), 0.0)
    (rej,) = out.events
    assert isinstance(rej, ConfigRejected) and "do not match" in rej.reason


def test_silent_holder_is_retried_then_another_holder_is_asked() -> None:
    data = conf(3)
    a = core(1, conf(2))
    a.observe(2, 3, sha256_hex(data), 0.0)
    a.observe(3, 3, sha256_hex(data), 0.0)
    out = a.tick(TOKEN / 2 + 0.01)
    assert [s.dest for s in out.sends] == [3]


def test_propose_validates_and_requires_a_higher_version_and_quorum() -> None:
    a = core(1, conf(4))
    with pytest.raises(ConfigError):
        a.propose(conf(5, "BAD"), True, 0.0)
    with pytest.raises(ControlError, match="must be greater than the running 4"):
        a.propose(conf(4, "other"), True, 0.0)
    with pytest.raises(ControlError, match="not quorate"):
        a.propose(conf(5), False, 0.0)
    assert a.running.data == conf(4)
    (ev,) = a.propose(conf(5), True, 0.0).events
    assert isinstance(ev, WriteConfig) and a.running.version == 5


def test_holder_serves_only_its_exact_running_config() -> None:
    a = core(1, conf(4))
    wrong = a.on_message(2, ConfigRequest(4, sha256_hex(conf(4, "x")), 0), 0.0)
    assert not wrong.sends
    right = a.on_message(2, ConfigRequest(4, a.running.sha256, 0), 0.0)
    (chunk,) = right.sends
    assert chunk.msg.data == conf(4) and chunk.msg.total == len(conf(4))


def test_oversize_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="over 1 MiB"):
        core(1, conf(1, "x" * (1024 * 1024)))


def test_a_pull_overtaken_by_a_local_proposal_never_goes_back() -> None:
    """Regression (SEED=2024): a v2 pull finished after v3 was accepted locally."""
    v2 = conf(2, "x" * (CONFIG_CHUNK_BYTES + 1))
    a, b = core(1, conf(1)), core(2, v2)
    first = a.observe(2, 2, sha256_hex(v2), 0.0)
    (req,) = first.sends
    chunk = b.on_message(1, req.msg, 0.0).sends[0].msg  # first chunk in flight
    a.propose(conf(3), True, 0.1)
    out = a.on_message(2, chunk, 0.2)
    assert not out.sends and not out.events
    assert a.running.version == 3
    last = ConfigChunk(2, sha256_hex(v2), CONFIG_CHUNK_BYTES, len(v2), v2[CONFIG_CHUNK_BYTES:])
    assert not a.on_message(2, last, 0.3).events and a.running.version == 3
