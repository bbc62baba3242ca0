"""ConfigSyncCore asks its host to validate a pulled config (ValidateConfig) and acts on
the answer (on_validated): the validator never runs inside the core for a pulled config,
stale answers are ignored, a lost one is given up and the config pulled again."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from clusterd.configsync.core import VALIDATE_TIMEOUT, ConfigSyncCore
from clusterd.configsync.model import ValidateConfig, sha256_hex
from clusterd.errors import ConfigError, Problem
from clusterd.events import ConfigRejected, WriteConfig
from clusterd.wire.messages import ConfigChunk, ConfigRequest

TOKEN = 1.0


def conf(version: int, body: str = "") -> bytes:
    return f"v={version}\n{body}".encode()


def validate(data: bytes) -> SimpleNamespace:
    m = re.match(rb"v=(\d+)\n", data)
    if m is None or b"BAD" in data:
        raise ConfigError([Problem("/cluster", "bad test config")])
    return SimpleNamespace(version=int(m.group(1)))


def outcome(data: bytes):
    """What a host feeds back: the validator's result, or the error it raised."""
    try:
        return validate(data)
    except ConfigError as exc:
        return exc


class Counting:
    """The core's validator, counting its calls (a pulled config must not call it)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, data: bytes) -> SimpleNamespace:
        self.calls += 1
        return validate(data)


def pulled(core: ConfigSyncCore, data: bytes, sender: int = 2, now: float = 0.0):
    """Advertise ``data`` from ``sender`` and deliver it in one chunk; the outputs."""
    version = int(re.match(rb"v=(\d+)\n", data).group(1))
    out = core.observe(sender, version, sha256_hex(data), now)
    (request,) = [s.msg for s in out.sends if isinstance(s.msg, ConfigRequest)]
    chunk = ConfigChunk(request.version, request.sha256, 0, len(data), data)
    return core.on_message(sender, chunk, now)


def test_a_pulled_config_is_handed_to_the_host_not_validated_in_the_core() -> None:
    validator = Counting()
    a = ConfigSyncCore(1, conf(4), validator, TOKEN)
    assert validator.calls == 1                  # the config it starts with
    out = pulled(a, conf(5))
    (request,) = out.events
    assert request == ValidateConfig(5, sha256_hex(conf(5)), conf(5))
    assert validator.calls == 1 and a.running.version == 4
    assert a.status(0.0)["validating"] == 5 and a.status(0.0)["pulling"] is None
    again = a.observe(2, 5, sha256_hex(conf(5)), 0.1)
    assert not again.sends, "pulled again while its validation is due"
    assert a.next_deadline() == pytest.approx(VALIDATE_TIMEOUT)


def test_a_valid_answer_writes_the_config() -> None:
    a = ConfigSyncCore(1, conf(4), validate, TOKEN)
    pulled(a, conf(5))
    (write,) = a.on_validated(sha256_hex(conf(5)), outcome(conf(5)), 0.2).events
    assert isinstance(write, WriteConfig) and write.data == conf(5) and write.version == 5
    assert "pulled from node 2" in write.reason
    assert a.running.version == 5 and a.status(0.2)["validating"] is None


def test_an_invalid_answer_rejects_the_config_and_holds_the_node() -> None:
    bad = conf(6, "BAD")
    a = ConfigSyncCore(1, conf(5), validate, TOKEN)
    pulled(a, bad)
    (rej,) = a.on_validated(sha256_hex(bad), outcome(bad), 0.2).events
    assert isinstance(rej, ConfigRejected) and rej.version == 6
    assert "bad test config" in rej.reason
    assert a.running.version == 5 and a.held
    assert not a.observe(2, 6, sha256_hex(bad), 0.3).sends, "pulled a rejected config again"


def test_an_answer_naming_another_version_rejects_the_config() -> None:
    a = ConfigSyncCore(1, conf(4), validate, TOKEN)
    pulled(a, conf(5))
    (rej,) = a.on_validated(sha256_hex(conf(5)), SimpleNamespace(version=7), 0.2).events
    assert isinstance(rej, ConfigRejected) and "the file says 7" in rej.reason
    assert a.running.version == 4


def test_a_stale_answer_after_a_newer_config_was_pulled_is_ignored() -> None:
    v5, v6 = conf(5), conf(6)
    a = ConfigSyncCore(1, conf(4), validate, TOKEN)
    pulled(a, v5, sender=2)
    (request,) = pulled(a, v6, sender=3, now=0.1).events   # newer: pulled at once
    assert request.version == 6 and a.status(0.1)["validating"] == 6
    assert a.on_validated(sha256_hex(v5), outcome(v5), 0.2).events == ()
    assert a.running.version == 4, "the stale answer installed the older config"
    (write,) = a.on_validated(sha256_hex(v6), outcome(v6), 0.3).events
    assert isinstance(write, WriteConfig) and write.version == 6
    assert a.on_validated(sha256_hex(v6), outcome(v6), 0.4).events == (), "applied twice"


def test_an_answer_after_a_newer_proposal_was_accepted_is_ignored() -> None:
    a = ConfigSyncCore(1, conf(4), validate, TOKEN)
    pulled(a, conf(5))
    (write,) = a.propose(conf(6), True, 0.1, validated=validate(conf(6))).events
    assert write.version == 6 and a.status(0.1)["validating"] is None
    assert a.on_validated(sha256_hex(conf(5)), outcome(conf(5)), 0.2).events == ()
    assert a.running.version == 6, "went back to an older config"


def test_an_answer_to_nothing_asked_is_ignored() -> None:
    a = ConfigSyncCore(1, conf(4), validate, TOKEN)
    assert a.on_validated(sha256_hex(conf(9)), outcome(conf(9)), 0.0).events == ()
    assert a.running.version == 4


def test_an_answer_that_never_comes_is_given_up_and_the_config_pulled_again() -> None:
    a = ConfigSyncCore(1, conf(4), validate, TOKEN)
    pulled(a, conf(5))
    a.observe(2, 5, sha256_hex(conf(5)), VALIDATE_TIMEOUT - 0.1)   # still advertised
    out = a.tick(VALIDATE_TIMEOUT)
    assert [type(s.msg) for s in out.sends] == [ConfigRequest], "not pulled again"
    assert a.status(VALIDATE_TIMEOUT)["validating"] is None
    assert a.on_validated(sha256_hex(conf(5)), outcome(conf(5)), VALIDATE_TIMEOUT).events \
        == (), "the late answer of the given-up validation was used"


def test_a_proposal_validated_by_the_host_is_not_validated_again() -> None:
    validator = Counting()
    a = ConfigSyncCore(1, conf(4), validator, TOKEN)
    (write,) = a.propose(conf(5), True, 0.0, validated=validate(conf(5))).events
    assert isinstance(write, WriteConfig) and validator.calls == 1   # the start only
    with pytest.raises(ConfigError, match="over 1 MiB"):
        a.propose(conf(6, "x" * (1024 * 1024)), True, 0.0, validated=validate(conf(6)))
