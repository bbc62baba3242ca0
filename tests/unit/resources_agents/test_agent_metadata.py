"""Meta-data parsing and parameter validation (pure)."""

from __future__ import annotations

import pytest
from clusterd.resources.agents.metadata import (
    MetaDataError,
    is_secret_name,
    parse_bool,
    parse_metadata,
    parse_time,
    validate_params,
)

OCF_NGINX_LIKE = b"""<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="nginx" version="1.0">
<version>1.0</version>
<shortdesc lang="en">Manages an Nginx web/proxy server instance</shortdesc>
<parameters>
<parameter name="configfile" required="1" unique="1">
<shortdesc lang="en">Configuration file path</shortdesc>
<content type="string" default="/etc/nginx/nginx.conf"/></parameter>
<parameter name="port" required="1"><shortdesc lang="en">port</shortdesc>
<content type="integer"/></parameter>
<parameter name="status10url"><content type="string"/></parameter>
<parameter name="debug"><content type="boolean" default="false"/></parameter>
</parameters>
<actions>
<action name="start" timeout="60s"/>
<action name="stop" timeout="1m"/>
<action name="monitor" depth="0" timeout="30s" interval="10s"/>
<action name="monitor" depth="10" timeout="30s" interval="30s"/>
<action name="meta-data" timeout="5"/>
</actions>
</resource-agent>
"""

RGMANAGER_IP_LIKE = b"""<resource-agent version="rgmanager 2.0" name="ip">
<parameters><parameter name="address" unique="1" primary="1"><content type="string"/></parameter>
<parameter name="monitor_link"><content type="boolean" default="1"/></parameter></parameters>
<actions><action name="start" timeout="20"/><action name="status" depth="0" interval="20"
timeout="10"/><action name="status" depth="10" interval="60" timeout="20"/>
<action name="monitor" depth="0" interval="99"/></actions>
<special tag="rgmanager"><attributes maxinstances="1"/></special></resource-agent>"""


def test_ocf_metadata_gives_defaults_required_and_timeouts():
    meta = parse_metadata(OCF_NGINX_LIKE)
    assert meta.name == "nginx"
    assert meta.param("configfile").required and meta.param("configfile").unique
    assert meta.defaults() == {"configfile": "/etc/nginx/nginx.conf", "debug": "false"}
    assert meta.action_timeout("start", 1) == 60.0
    assert meta.action_timeout("stop", 1) == 60.0
    assert meta.action_timeout("promote", 7.5) == 7.5
    assert [(a.depth, a.interval) for a in meta.status_actions()] == [(0, 10.0), (10, 30.0)]


def test_rgmanager_metadata_prefers_status_over_monitor_and_reads_primary():
    meta = parse_metadata(RGMANAGER_IP_LIKE)
    assert meta.primary == "address"
    assert [(a.name, a.depth, a.interval) for a in meta.status_actions()] == [
        ("status", 0, 20.0), ("status", 10, 60.0)]


@pytest.mark.parametrize("garbage, reason", [
    (b"", "empty"),
    (b"\x00\xff binary", "not XML"),
    (b"<resource-agent", "not XML"),
    (b"<html><body>hi</body></html>", "expected <resource-agent>"),
    (b"<resource-agent/>", "has no name"),
    (b'<resource-agent name="x"><actions><action name="start" timeout="soon"/></actions>'
     + b"</resource-agent>", "'start'"),
    (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/shadow">]><resource-agent name="&e;"/>',
     "external entity"),
])
def test_garbage_metadata_is_refused_with_a_reason(garbage, reason):
    with pytest.raises(MetaDataError, match=reason):
        parse_metadata(garbage)


@pytest.mark.parametrize("text, seconds", [
    ("20", 20.0), ("20s", 20.0), ("1m", 60.0), ("1min", 60.0), ("500ms", 0.5), ("2h", 7200.0),
    (" 1.5s ", 1.5)])
def test_parse_time(text, seconds):
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1", "1 d", "1m30s"])
def test_parse_time_refuses(text):
    with pytest.raises(ValueError, match="is not a time"):
        parse_time(text)


def test_parse_bool():
    assert [parse_bool(v) for v in ("1", "yes", "TRUE", "on", "0", "no", "false", "off")] == [
        True] * 4 + [False] * 4
    with pytest.raises(ValueError, match="not a boolean"):
        parse_bool("maybe")


def test_validate_reports_every_problem_at_once():
    meta = parse_metadata(OCF_NGINX_LIKE)
    problems = validate_params(meta, {"port": "eighty", "debug": "perhaps", "confgfile": "/x",
                                      "__independent_subtree": "1"}, "service[web]/ocf[n]")
    reasons = [p.reason for p in problems]
    assert reasons == [
        "nginx: parameter 'port' = 'eighty' is not an integer",
        "nginx: parameter 'debug' = 'perhaps' is not a boolean (use 1/0, yes/no, true/false or on/off)",
        "nginx: unknown parameter 'confgfile' (known: configfile, debug, port, status10url)",
    ]
    assert all(p.where == "service[web]/ocf[n]" for p in problems)


def test_validate_required_without_default_is_missing():
    meta = parse_metadata(OCF_NGINX_LIKE)
    reasons = [p.reason for p in validate_params(meta, {}, "w")]
    assert reasons == ["nginx: required parameter 'port' is missing (port)"]


def test_secret_values_are_not_echoed_in_problems():
    meta = parse_metadata(b'<resource-agent name="db"><parameters><parameter name="passwd">'
                          b'<content type="integer"/></parameter></parameters></resource-agent>')
    [problem] = validate_params(meta, {"passwd": "hunter2"}, "w")
    assert "hunter2" not in str(problem) and "(hidden)" in problem.reason


@pytest.mark.parametrize("name, secret", [
    ("password", True), ("passwd", True), ("api_token", True), ("client_secret", True),
    ("ssh_key", True), ("key", True), ("keyfile", False), ("configfile", False),
    ("monkey_business", False)])
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret
