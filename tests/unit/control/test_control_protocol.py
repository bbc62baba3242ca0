"""Control protocol: request decoding, op registry, replies (pure, no sockets)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from clusterd.control import protocol as p
from clusterd.errors import ControlError

PEER = p.Peer(pid=1, uid=0, gid=0)


async def _echo(args, peer):
    return {"args": dict(args), "uid": peer.uid}


def _registry() -> p.OpRegistry:
    reg = p.OpRegistry()
    reg.register("status", _echo, role=p.Role.READ)
    reg.register("fence.node", _echo, args=(p.Arg("node", str), p.Arg("force", bool, False)),
                 role=p.Role.ADMIN)
    reg.register("svc.restarts", _echo, args=(p.Arg("count", int),), role=p.Role.ADMIN)
    return reg


def _code(fn, *a) -> str:
    with pytest.raises(ControlError) as info:
        fn(*a)
    return info.value.code


BAD_LINES = [
    (b"not json\n", p.E_BAD_REQUEST),
    (b"[1,2]\n", p.E_BAD_REQUEST),
    (b'{"op": "status"}\n', p.E_BAD_REQUEST),
    (b'{"v": "1", "op": "status"}\n', p.E_BAD_REQUEST),
    (b'{"v": true, "op": "status"}\n', p.E_BAD_REQUEST),
    (b'{"v": 2, "op": "status"}\n', p.E_VERSION),
    (b'{"v": 1}\n', p.E_BAD_REQUEST),
    (b'{"v": 1, "op": ""}\n', p.E_BAD_REQUEST),
    (b'{"v": 1, "op": "status", "args": [1]}\n', p.E_BAD_ARGS),
    (b'{"v": 1, "op": "status", "extra": 1}\n', p.E_BAD_REQUEST),
    (b"\xff\xfe\n", p.E_BAD_REQUEST),
]


@pytest.mark.parametrize(("line", "code"), BAD_LINES)
def test_bad_request_lines_get_a_code(line, code):
    assert _code(p.Request.from_line, line) == code


def test_oversized_request_is_refused_before_parsing():
    line = b'{"v":1,"op":"status","args":{"x":"' + b"a" * p.MAX_REQUEST_BYTES + b'"}}\n'
    assert _code(p.Request.from_line, line) == p.E_TOO_LARGE


def test_good_request_round_trips():
    req = p.Request.from_line(p.encode_request("fence.node", {"node": "node2"}))
    assert req == p.Request(v=1, op="fence.node", args={"node": "node2"})


RESOLVE_CASES = [
    ("nope", {}, p.E_UNKNOWN_OP, "unknown op 'nope'; known ops: fence.node, status, svc.restarts"),
    ("fence.node", {}, p.E_BAD_ARGS, "op 'fence.node': missing argument 'node'"),
    ("fence.node", {"node": 3}, p.E_BAD_ARGS, "op 'fence.node': argument 'node' must be a string"),
    ("fence.node", {"node": "n", "x": 1}, p.E_BAD_ARGS, "op 'fence.node': unknown argument(s) x"),
    ("svc.restarts", {"count": True}, p.E_BAD_ARGS,
     "op 'svc.restarts': argument 'count' must be an integer"),
    ("status", {"a": 1}, p.E_BAD_ARGS, "op 'status': unknown argument(s) a"),
]


@pytest.mark.parametrize(("op", "args", "code", "message"), RESOLVE_CASES)
def test_registry_rejects_with_clear_messages(op, args, code, message):
    with pytest.raises(ControlError) as info:
        _registry().resolve(p.Request(1, op, args))
    assert (info.value.code, info.value.message) == (code, message)


def test_registry_accepts_optional_args_and_runs_handler():
    spec, args = _registry().resolve(p.Request(1, "fence.node", {"node": "node2"}))
    assert asyncio.run(spec.handler(args, PEER)) == {"args": {"node": "node2"}, "uid": 0}


def test_registry_refuses_double_registration():
    reg = _registry()
    with pytest.raises(ValueError, match="already registered"):
        reg.register("status", _echo, role=p.Role.READ)


def test_replies_decode_to_result_or_error():
    assert p.decode_response(p.encode_result({"a": 1})) == {"a": 1}
    with pytest.raises(ControlError) as info:
        p.decode_response(p.encode_error(p.E_NOT_READY, "wait"))
    assert (info.value.code, info.value.message) == (p.E_NOT_READY, "wait")
    for garbage in (b"xx\n", b'{"v":1}\n', b'{"ok":false}\n'):
        assert _code(p.decode_response, garbage) == p.E_PROTOCOL


def test_reply_is_one_json_line():
    data = p.encode_result({"text": "a\nb"})
    assert data.count(b"\n") == 1 and json.loads(data)["v"] == p.PROTOCOL_VERSION


CONF = "<cluster name='a' config_version='2'/>"


@pytest.mark.parametrize(("args", "expected"), [
    ({"conf": CONF}, CONF.encode()),
    ({"conf_b64": base64.b64encode(CONF.encode()).decode()}, CONF.encode()),
])
def test_conf_bytes_from_text_or_base64(args, expected):
    assert p.conf_bytes_from_args("conf.propose", args) == expected


@pytest.mark.parametrize("args", [{}, {"conf": "x", "conf_b64": "eA=="}, {"conf_b64": "%%%"}])
def test_conf_bytes_needs_exactly_one_valid_form(args):
    assert _code(p.conf_bytes_from_args, "conf.propose", args) == p.E_BAD_ARGS
