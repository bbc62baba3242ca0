"""Every parser of outside input, at size n and 8n: the time ratio must stay well below
quadratic (``scaling.BOUND`` = 24 where linear is 8 and quadratic 64), so that a slow
algorithm fails here and not on a node fed a big input (a 300-node cluster.conf, a full
1024-node heartbeat, a 4 MiB control request, a 1 MiB agent metadata document).

Parsers: cluster.conf ``parse`` and ``validate_bytes`` (valid and invalid), the wire
decoder (sealed packets of every size class through ``PacketGuard``), the control request
decoder and the control server end to end, fence agent and resource agent metadata XML,
``NodeReport.from_wire``, ``FenceStateMessage.from_wire``, the status document rendered
by ``clustat`` (text and XML), agent output redaction and ``/proc/self/mountinfo``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import tempfile

import pytest
from clusterd.control import protocol as p
from clusterd.control.server import ControlServer
from clusterd.fencing.exchange import FenceStateMessage
from clusterd.fencing.metadata import parse_metadata as fence_metadata
from clusterd.fencing.redact import Redactor
from clusterd.services.model import NodeReport
from clusterd.wire.guard import PacketGuard
from clusterd.wire.messages import AppMessage, Heartbeat, ViewId
from fuzzlib import WALL, fence_member
from scaling import assert_scales

# ------------------------------------------------------------------ cluster.conf


def cluster_conf(n: int, bad: bool = False) -> bytes:
    """n nodes with fencing, n devices, n services with a resource each; ``bad``: a
    mistake on every service (an unknown attribute and a word where RHCS read 0/1)."""
    nodes = "".join(f'<clusternode name="node{i}" nodeid="{i}"><fence><method name="m">'
                    f'<device name="bmc{i}"/></method></fence></clusternode>'
                    for i in range(1, n + 1))
    devs = "".join(f'<fencedevice name="bmc{i}" agent="fence_ipmilan" ipaddr="10.0.'
                   f'{i // 250}.{i % 250}" login="a" passwd="p"/>' for i in range(1, n + 1))
    attrs = 'autostart="yes" bogus="1"' if bad else 'autostart="0"'
    svcs = "".join(f'<service name="s{i}" {attrs}><ip address="10.1.{i // 250}.{i % 250}/24"'
                   "/></service>" for i in range(n))
    return (f'<?xml version="1.0"?><cluster name="big" config_version="1"><clusternodes>'
            f"{nodes}</clusternodes><fencedevices>{devs}</fencedevices><rm>{svcs}</rm>"
            "</cluster>").encode()


def test_conf_parse_scales() -> None:
    from clusterd.conf import parse
    assert_scales("conf.parse", parse, cluster_conf, 12)


@pytest.mark.parametrize("bad", [False, True], ids=["valid", "invalid"])
def test_conf_validate_bytes_scales(bad: bool) -> None:
    from clusterd.conf import validate_bytes
    assert bool(validate_bytes(cluster_conf(2, bad))) is bad
    assert_scales("conf.validate_bytes", validate_bytes, lambda n: cluster_conf(n, bad), 12)


# ------------------------------------------------------------------ wire
KEY = b"s" * 256
PEERS = {1: ("198.18.2.1", 5405), 2: ("198.18.2.2", 5405)}


def _guards() -> tuple[PacketGuard, PacketGuard]:
    rx = PacketGuard(nodeid=1, cluster_id=9, key=KEY, incarnation=1, peers={2: PEERS[2]},
                     seen={2: (5, 3)})
    tx = PacketGuard(nodeid=2, cluster_id=9, key=KEY, incarnation=5, peers={1: PEERS[1]},
                     seen={1: (1, 3)})
    return rx, tx


def _accept_all(packets: list[bytes]) -> None:
    rx, _ = _guards()
    for data in packets:
        assert rx.accept(data, PEERS[2], 0.0) is not None


@pytest.mark.parametrize("shape", ["flat", "nested", "strings"])
def test_wire_app_decode_scales(shape: str) -> None:
    """One sealed app packet of 3.5 KiB and one of 28 KiB (under the 32 KiB app payload
    limit; the size check re-encodes the big one), replayed to a fresh guard per call (a
    seq is accepted once)."""
    def make(n: int) -> list[bytes]:
        if shape == "flat":
            payload = {f"k{i}": i for i in range(n // 12)}
        elif shape == "nested":
            payload = {"s": {f"service:s{i}": {"st": "started", "rs": [1.5]}
                             for i in range(n // 40)}}
        else:
            payload = {"w": "\u00e9" * (n // 8)}          # escapes: 6 bytes each
        _, tx = _guards()
        return [tx.seal(1, AppMessage("svc.report", payload))[1] for _ in range(4)]
    assert_scales(f"wire app {shape}", _accept_all, make, 3500)


def test_wire_heartbeat_and_propose_decode_scale() -> None:
    from clusterd.wire.messages import Propose, View

    def make(n: int) -> list[bytes]:
        _, tx = _guards()
        hb = Heartbeat(ViewId(3, 2, 5), 1, "cd" * 32, tuple(range(1, n + 1)), n=3)
        view = View(ViewId(4, 2, 5), tuple((i, i + 7) for i in range(1, n + 1)))
        return [packet for _ in range(4)
                for packet in (tx.seal(1, hb)[1], tx.seal(1, Propose(view))[1])]
    assert_scales("wire heartbeat/propose", _accept_all, make, 128)


# ------------------------------------------------------------------ control protocol
def control_line(n: int) -> bytes:
    return p.encode_request("conf.propose", {"conf_b64": base64.b64encode(
        b"<cluster>" + b"x" * n + b"</cluster>").decode()})


def test_control_request_decode_scales() -> None:
    reg = p.OpRegistry()

    async def handler(args, peer):
        return None
    reg.register("conf.propose", handler, p.CORE_OP_ARGS["conf.propose"], role=p.Role.ADMIN)

    def decode(line: bytes) -> None:
        request = p.Request.from_line(line)
        p.conf_bytes_from_args(request.op, reg.resolve(request)[1])
    assert_scales("control request", decode, control_line, 48_000)


def test_control_server_end_to_end_scales() -> None:
    """A request line of 384 KiB and of 3 MiB through the real server (stream reader
    and decoder), answered over the socket."""
    async def echo(args, peer):
        return len(args["conf_b64"])
    reg = p.OpRegistry()
    reg.register("conf.propose", echo, p.CORE_OP_ARGS["conf.propose"], role=p.Role.ADMIN)
    directory = tempfile.mkdtemp(prefix="rhc-scale-")
    path = os.path.join(directory, "c.sock")
    loop = asyncio.new_event_loop()
    server = ControlServer(reg, path)
    loop.run_until_complete(server.start())

    def roundtrip(line: bytes) -> None:
        async def call() -> bytes:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(line)
            got = await reader.readline()
            writer.close()
            return got
        assert json.loads(loop.run_until_complete(call()))["ok"]

    try:
        assert_scales("control server", roundtrip, control_line, 300_000)
    finally:
        loop.run_until_complete(server.close())
        loop.close()
        shutil.rmtree(directory, ignore_errors=True)


# ------------------------------------------------------------------ agent metadata
def fence_xml(n: int) -> bytes:
    params = "".join(f'<parameter name="p{i}" required="{i % 2}"><content type="select" '
                     f'default="a">' + "".join(f'<option value="v{j}"/>' for j in range(4))
                     + f"</content><shortdesc>p{i}</shortdesc></parameter>" for i in range(n))
    return (f'<?xml version="1.0"?><resource-agent name="fence_big" shortdesc="x"><parameters>'
            f'{params}</parameters><actions><action name="off"/><action name="on"/>'
            f'<action name="metadata"/></actions></resource-agent>').encode()


def test_fence_agent_metadata_scales() -> None:
    assert len(fence_metadata("fence_big", fence_xml(3)).parameters) == 3
    assert_scales("fence metadata", lambda x: fence_metadata("fence_big", x), fence_xml, 100)


def test_resource_agent_metadata_scales() -> None:
    from clusterd.resources.agents.metadata import parse_metadata

    def xml(n: int) -> bytes:
        return (fence_xml(n).replace(b'<action name="off"/><action name="on"/>',
                                     b'<action name="start" timeout="20s"/><action name="'
                                     b'monitor" interval="10" depth="0" timeout="1m"/>'))
    assert len(parse_metadata(xml(3)).params) == 3
    assert_scales("resource metadata", parse_metadata, xml, 100)


# ------------------------------------------------------------------ app payloads
def test_node_report_from_wire_scales() -> None:
    def make(n: int) -> dict:
        return {"r": True, "l": False, "adm": {"ver": 3, "frozen": [f"service:s{i}" for i in
                                                                    range(n)]},
                "s": {f"service:s{i}": {"st": "started", "b": "", "d": "4.2",
                                        "rs": [WALL, WALL + 1], "sf": False, "w": "", "p": False}
                      for i in range(n)},
                "bk": [f"n{i}" for i in range(n)],
                "gh": {f"n{i}": {"i": 7, "s": {"service:x": "started"}} for i in range(n)}}
    assert_scales("NodeReport.from_wire", NodeReport.from_wire, make, 150)


def test_fence_state_from_wire_scales() -> None:
    """Ops are capped (MAX_OPS); what grows is each op's lists and texts."""
    def make(n: int) -> dict:
        wire = FenceStateMessage.build(fence_member("n1"), 3, 6.0, WALL).to_wire()
        op = wire["ops"][0]
        op["covers"] = [f"n{i}" for i in range(n)]
        op["requesters"] = [f"r{i}" for i in range(n)]
        op["last_error"] = "e" * n
        return wire
    assert_scales("FenceStateMessage.from_wire", FenceStateMessage.from_wire, make, 2000)


# ------------------------------------------------------------------ status, agent output
def status_doc(n: int) -> dict:
    return {"cluster": {"name": "big", "id": 1, "generation": 7, "config_version": 3,
                        "config_sha256": "ab" * 32, "config_holders": n,
                        "config_conflict": None, "config_accepted": True,
                        "config_unaccepted": []},
            "quorum": {"quorate": True, "votes": n, "expected_votes": n, "quorum": n // 2 + 1},
            "local": {"name": "node1", "nodeid": 1},
            "view": {"epoch": 7, "members": list(range(1, n + 1)), "coordinator": 1},
            "nodes": [{"name": f"node{i}", "nodeid": i, "state": "online", "local": i == 1,
                       "estranged": False, "rgmanager": True, "votes": 1, "standby": False}
                      for i in range(1, n + 1)],
            "services": [{"name": f"service:s{i}", "state": "started", "owner": f"node{i}",
                          "last_owner": None, "flags": [], "restarts": 0,
                          "last_transition": 1764100000} for i in range(1, n + 1)],
            "fencing": []}


@pytest.mark.parametrize("form", ["text", "xml"])
def test_clustat_status_rendering_scales(form: str) -> None:
    from clusterd.cli.clustat import render_text, render_xml
    render = render_text if form == "text" else render_xml
    assert "node1" in str(render(status_doc(2)))
    assert_scales(f"clustat {form}", render, status_doc, 60)


def test_agent_output_redaction_scales() -> None:
    redactor = Redactor.for_options({"passwd": "S3cret-pw", "login": "admin"},
                                    ("tok-123456",))

    def make(n: int) -> str:
        return ("Status: ON passwd=S3cret-pw token=tok-123456 more text here\n" * (n // 60))
    out = redactor.redact(make(600))
    assert "S3cret-pw" not in out and "tok-123456" not in out
    assert_scales("redact", redactor.redact, make, 30_000)


def test_mountinfo_scales() -> None:
    from clusterd.resources.agents.fs import parse_mountinfo

    def make(n: int) -> str:
        return "".join(f"{i} 1 8:{i % 16} / /mnt/with\\040space/{i} rw,relatime shared:1 - "
                       f"xfs /dev/sd{i} rw\n" for i in range(n))
    assert parse_mountinfo(make(2))[1].mountpoint == "/mnt/with space/1"
    assert_scales("mountinfo", parse_mountinfo, make, 400)
