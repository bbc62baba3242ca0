"""An idle node's inputs mostly produce nothing: the cores return shared empty outputs
and keep the running-config record they have instead of building equal copies at every
datagram (issue 18 item 4: idle CPU). What they return is unchanged."""

from __future__ import annotations

from clusterd.events import NOTHING, OutputBuffer, Outputs
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.host import NOTHING_OUT, ClusterCore
from clusterd.wire.messages import (
    Heartbeat,
    Send,
    ViewId,
    decode_payload,
    encode_payload,
)

KEY = b"k" * 256


def _cores() -> dict[int, ClusterCore]:
    cfg = MembershipConfig("idle", tuple(NodeSpec(f"n{i}", i, 1, f"198.18.0.{i}")
                                         for i in (1, 2)))
    return {i: ClusterCore(cfg, i, key=KEY, incarnation=100 + i, config_data=None,
                           validator=lambda data: None) for i in (1, 2)}


def test_an_empty_buffer_takes_the_shared_empty_output():
    buf = OutputBuffer()
    assert buf.take() is NOTHING
    buf.send(2, "x")
    out = buf.take()
    assert out.sends == (Send(2, "x"),) and buf.take() is NOTHING


def test_adding_nothing_returns_the_other_side():
    some = Outputs((Send(2, "x"),), ())
    assert some + NOTHING is some and NOTHING + some is some
    assert (some + some).sends == (Send(2, "x"), Send(2, "x"))
    assert Outputs() + Outputs() == Outputs()


def test_the_running_config_record_is_kept_while_equal():
    core = _cores()[1]
    before = core.membership.local
    core.tick(0.0)
    core.tick(0.1)
    assert core.membership.local is before
    core.configsync.running = type(core.configsync.running)(7, "a" * 64, b"x")
    core._sync_state(0.2)
    assert core.membership.local.version == 7 and core.membership.local is not before


def test_a_datagram_with_nothing_to_answer_returns_the_shared_empty_output():
    cores = _cores()
    now, idle = 0.0, []
    for round_ in range(60):             # form the view, then idle heartbeats
        now += 0.1
        for i, core in cores.items():
            for gram in core.tick(now).datagrams:
                out = cores[3 - i].on_datagram(gram.data, core.addr, now)
                if round_ >= 50:
                    idle.append(out)
    assert cores[1].membership.view is not None and cores[2].membership.view is not None
    assert idle and all(out is NOTHING_OUT for out in idle)


def test_heartbeat_payloads_decode_as_before_in_every_version():
    hb = Heartbeat(ViewId(3, 1, 9), 7, "a" * 64, (1, 2), 5, 4, True, True, t=1234)
    for version in (1, 2, 3, 4):
        mtype, payload = encode_payload(hb, version)
        got = decode_payload(mtype, payload, version)
        assert got.view == hb.view and got.hears == hb.hears
        assert got.held is (version >= 2) and got.unaccepted is (version >= 3)
        assert got.t == (1234 if version >= 4 else None)


def test_payloads_are_the_bytes_json_dumps_made():
    import json

    from clusterd.wire.messages import AppMessage, app_payload_size
    hb = Heartbeat(ViewId(3, 1, 9), 7, "a" * 64, (1, 2), 5, None, False, True, t=99)
    app = AppMessage("svc.report", {"ü": "é\u2028", "n": [1.5, None, True], "k": {}})
    for msg in (hb, app):
        for version in (1, 2, 3, 4):
            _mtype, payload = encode_payload(msg, version)
            obj = json.loads(payload)
            assert payload == json.dumps(obj, separators=(",", ":")).encode()
    assert app_payload_size(app.payload) == len(
        json.dumps(app.payload, separators=(",", ":")).encode())


def test_next_change_is_the_earliest_instant_after_now():
    import random

    from clusterd.membership.peers import Lease, PeerInfo, PeerTable
    rng = random.Random(18)
    vid = ViewId(1, 1, 1)
    for _ in range(300):
        table = PeerTable(1.0)
        pick = lambda: rng.choice([float("-inf"), rng.uniform(0, 10)])
        table.peers = {p: PeerInfo(1, pick(), None, 0) for p in range(rng.randint(0, 4))}
        table.support = {p: Lease(vid, pick()) for p in range(rng.randint(0, 4))}
        table.grants = {p: Lease(vid, pick()) for p in range(rng.randint(0, 4))}
        table.excluded_until = {p: pick() for p in range(rng.randint(0, 4))}
        now = rng.uniform(0, 10)
        times = [i.heard_at + 1.0 for i in table.peers.values()]
        times += [x.expires for x in (*table.support.values(), *table.grants.values())]
        times += table.excluded_until.values()
        assert table.next_change(now) == min((t for t in times if t > now),
                                             default=float("inf"))
