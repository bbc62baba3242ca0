"""Fuzz parse(): random and mutated bytes may only ever raise ConfigError."""

from __future__ import annotations

import pytest
from clusterd.conf import ClusterConf, parse, validate_bytes
from clusterd.errors import ConfigError
from confbuild import REFERENCE, reference_files, small_cluster, to_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REFERENCE_EXAMPLE = REFERENCE / "rgmanager-examples-cluster.conf"
SEEDS = [p.read_bytes() for p in reference_files()] + [to_bytes(small_cluster(3))]
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
TOKENS = [b"<", b">", b"/>", b"</", b'"', b"'", b"&", b"&amp;", b"&#0;", b"&#x110000;",
          b"<!DOCTYPE x [<!ENTITY e 'x'>]>", b"<!--", b"-->", b"<![CDATA[", b"]]>", b"<?pi ?>",
          b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b'nodeid="', b'name="', b"<rm>", b"<service",
          b'ref="', b"<clusternode ", b"xmlns:x='u' x:a='1'", b"\n", b" " * 3]


def check(data: bytes) -> None:
    try:
        conf = parse(data)
    except ConfigError as exc:
        assert exc.problems and all(p.where and p.reason for p in exc.problems)
        return
    assert isinstance(conf, ClusterConf)
    assert parse(conf.canonical_bytes()).canonical_bytes() == conf.canonical_bytes()


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data):
    check(data)


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete", "truncate"]))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            end = draw(st.integers(pos, min(len(data), pos + 40)))
            del data[pos:end]
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "delete" and pos < len(data):
            del data[pos]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_reference_files(data):
    check(data)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated())
def test_validate_bytes_never_raises(data):
    assert isinstance(validate_bytes(data), tuple)


def test_regression_stray_text_after_a_fence_device():
    # found by test_mutated_reference_files: a tail text broke the per-device schema probe
    data = (REFERENCE_EXAMPLE.read_bytes()
            .replace(b'agent="fence_wti" ipaddress', b'agent="fence_wti"/> ipaddress'))
    with pytest.raises(ConfigError) as exc:
        parse(data)
    expected = ("/cluster/fencedevices",
                "<fencedevices> must not contain text (found after <fencedevice>); remove it")
    assert expected in [(p.where, p.reason) for p in exc.value.problems]
    assert "password=" not in str(exc.value)  # the stray text itself is never echoed
