"""Pure parts: secret redaction and metadata parsing."""

from __future__ import annotations

import base64

import pytest
from clusterd.errors import AgentError
from clusterd.fencing.metadata import parse_metadata
from clusterd.fencing.redact import MASK, Redactor, is_secret_key, redact_options


@pytest.mark.parametrize("key, secret", [
    ("passwd", True), ("password", True), ("snmp_priv_passwd", True), ("community", True),
    ("api_token", True), ("client_secret", True), ("hexadecimal_kg", True),
    # a program that prints the password, not the password (clusterd.truth: one rule)
    ("password-script", False), ("identity_file", False), ("login", False), ("ipaddr", False), ("port", False),
    ("auth", False), ("action", False), ("lanplus", False),
])
def test_secret_keys(key, secret):
    assert is_secret_key(key) is secret


def test_options_and_text_are_redacted_by_key_and_by_value():
    opts = {"login": "admin", "passwd": "hunter22", "community": "public1"}
    assert redact_options(opts) == {"login": "admin", "passwd": MASK, "community": MASK}
    r = Redactor.for_options(opts)
    b64 = base64.b64encode(b"hunter22").decode()
    text = (f"login admin pw hunter22 b64 {b64} community=public1\n"
            f"password: other-secret\n--snmp-priv-passwd zzz\n")
    out = r.redact(text)
    for leaked in ("hunter22", b64, "public1", "other-secret", "zzz"):
        assert leaked not in out
    assert "login admin" in out


@pytest.mark.parametrize("data, message", [
    (b"", "not valid XML"),
    (b"\x00\xff garbage", "not valid XML"),
    (b"<html/>", "root is <html>"),
    (b"<resource-agent name='x'><parameters/></resource-agent>", "lists no <actions>"),
    (b"<!DOCTYPE x [<!ENTITY a 'b'>]><resource-agent/>", "DOCTYPE/ENTITY; refused"),
    (b"<resource-agent>" + b" " * (1024 * 1024 + 1), "larger than 1 MiB"),
])
def test_garbage_metadata_is_a_clear_error(data, message):
    with pytest.raises(AgentError, match=message):
        parse_metadata("fence_x", data)
