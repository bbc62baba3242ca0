"""Services reports at scale (issue 18, item 2): a report that does not fit in one
application message goes out in parts (``services.chunks``) and is assembled only when
every part of one generation is in; a message over the limit is refused where it is
built, with one log line a minute per channel, never an exception out of the cycle."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from clusterd.errors import ControlError
from clusterd.fencing.exchange import fit
from clusterd.placement.model import ServiceState
from clusterd.services import chunks
from clusterd.services import core as sc
from clusterd.services.model import (
    CH_COMMAND,
    CH_REPORT,
    CH_REQUEST,
    CH_RESPONSE,
    AdminState,
    Command,
    CommandKind,
    LocalService,
    NodeReport,
)
from clusterd.services.ops import ServiceOps
from clusterd.wire.limit import RefusalLog, oversize
from clusterd.wire.messages import MAX_APP_PAYLOAD, View, ViewId, app_payload_size
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_services_core import core, facts, of

STATES = (ServiceState.STOPPED, ServiceState.STARTED, ServiceState.FAILED)


def report(count: int, seed: int = 0, why: str = "") -> NodeReport:
    rng = random.Random(seed)
    services = {f"service:s{i:05d}": LocalService(
        rng.choice(STATES), done=f"{rng.randint(1, 9)}.{i}" if rng.random() < .3 else "",
        restarts=(1.7e9,)[:rng.randint(0, 1)], why=why) for i in range(count)}
    admin = AdminState(3, disabled=frozenset(list(services)[: count // 3]))
    return NodeReport(ready=True, admin=admin, services=services, epoch=4)


def messages(wire: dict, generation: int) -> list[tuple[str, dict]]:
    built = chunks.build(wire, generation)
    assert not built.refused
    if built.single is not None:
        return [(CH_REPORT, built.single)]
    return [(chunks.CH_REPORT_PART, p) for p in built.parts]


class Receiver:
    """A receiver as ``ServicesCore`` is one: a single report replaces the last one; a
    part goes through the assembler; the complete report stands until the next one."""

    def __init__(self) -> None:
        self.assembler = chunks.Assembler()
        self.current: dict | None = None
        self.assembled: list[int] = []

    def deliver(self, channel: str, payload: dict, incarnation: int = 1) -> None:
        if channel == CH_REPORT:
            self.assembler.single(2, incarnation)
            self.current = {k: v for k, v in payload.items() if k != "g"}  # its report
            self.assembled = []     # generations go up between two single reports
        else:
            wire = self.assembler.add(2, incarnation, payload)
            if wire is not None:
                self.current = wire
                self.assembled.append(payload["g"])


# ---------------------------------------------------------------------- the chunker
def test_a_report_that_fits_is_one_message_as_before_with_its_generation() -> None:
    wire = report(200).to_wire()
    [(channel, single)] = messages(wire, 1)
    assert channel == CH_REPORT and single == {**wire, "g": 1}
    # the form older peers read: they take the same report and ignore the generation
    assert NodeReport.from_wire(single) == NodeReport.from_wire(wire)
    assert chunks.single_generation(single) == 1 and chunks.single_generation(wire) is None


def test_a_report_that_fits_only_without_its_generation_goes_in_parts() -> None:
    """The generation is counted where the message is built: a report just under the
    limit is never sent over it."""
    for count in range(300, 1000, 7):
        wire = report(count).to_wire()
        built = chunks.build(wire, 2**63 - 1)
        if built.single is not None:
            assert app_payload_size(built.single) <= MAX_APP_PAYLOAD
        else:
            assert built.parts


@pytest.mark.parametrize("count", [400, 1000, 5000, 10_000])
def test_a_large_report_goes_in_parts_well_under_the_limit(count: int) -> None:
    wire = report(count, why="x" * 40).to_wire()
    parts = chunks.build(wire, 7).parts
    assert len(parts) >= 2 and len(parts) <= chunks.MAX_PARTS
    sizes = [app_payload_size(p) for p in parts]
    assert max(sizes) <= 2 * chunks.PART_BYTES + 96 < MAX_APP_PAYLOAD
    assert {(p["g"], p["n"], p["h"]) for p in parts} == {(7, len(parts), parts[0]["h"])}
    r = Receiver()
    for p in reversed(parts):
        r.deliver(chunks.CH_REPORT_PART, p)
    assert NodeReport.from_wire(r.current) == NodeReport.from_wire(wire)


def test_parts_of_escaped_text_stay_under_the_limit() -> None:
    """JSON escaping at most doubles a slice: a report whose text is mostly quotes and
    backslashes still gives parts under the limit."""
    wire = report(600, why='"\\' * 100).to_wire()
    for p in chunks.build(wire, 1).parts:
        assert app_payload_size(p) < MAX_APP_PAYLOAD


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 5000), min_size=1, max_size=4), st.integers(0, 2**32),
       st.floats(0.0, 0.5), st.floats(0.0, 0.3))
def test_assembled_reports_are_whole_reports_under_loss_reorder_and_duplicates(
        counts: list[int], seed: int, loss: float, dup: float) -> None:
    """Generations 1..k of random sizes (0..5,000 services), their messages lost,
    duplicated and reordered (across generations too, within a window): whatever the
    receiver holds at any moment is one report exactly as sent, never a mix, and the
    generations it assembles only go up (between single reports, which carry none); the
    last one, repaired by the periodic copy
    (sent again whole, in order), is what it holds in the end."""
    rng = random.Random(seed)
    sent = {g: report(n, seed + g).to_wire() for g, n in enumerate(counts, 1)}
    stream: list[tuple[str, dict]] = []
    for g, wire in sent.items():
        for m in messages(wire, g):
            if rng.random() >= loss:
                stream.append(m)
            if rng.random() < dup:
                stream.append(m)
    for i in range(len(stream)):                  # reorder within a window of 12
        j = min(len(stream) - 1, i + rng.randint(0, 12))
        stream[i], stream[j] = stream[j], stream[i]
    last = max(sent)
    r = Receiver()
    for channel, payload in stream:
        r.deliver(channel, payload)
        assert r.current is None or r.current in sent.values()
        assert r.assembled == sorted(set(r.assembled))
    for m in messages(sent[last], last):          # the periodic copy of the last one
        r.deliver(*m)
    assert r.current == sent[last]
    pending = r.assembler.pending(2)
    assert pending is None or pending[0] > last   # no partial report left behind


CH_REPORT_PART = chunks.CH_REPORT_PART


def test_a_newer_generation_drops_the_partial_one_and_the_old_parts_are_ignored() -> None:
    old, new = report(900, 1).to_wire(), report(900, 2).to_wire()
    p_old, p_new = chunks.build(old, 1).parts, chunks.build(new, 2).parts
    r = Receiver()
    r.deliver(CH_REPORT_PART, p_old[0])
    r.deliver(CH_REPORT_PART, p_new[0])
    assert r.assembler.pending(2) == (2, 1, len(p_new))   # one partial per sender
    for p in p_old[1:]:                                  # superseded: never assembled
        r.deliver(CH_REPORT_PART, p)
    assert r.current is None
    for p in p_new[1:]:
        r.deliver(CH_REPORT_PART, p)
    assert r.current == new and r.assembler.pending(2) is None
    for p in p_old:                                      # late: ignored
        r.deliver(CH_REPORT_PART, p)
    assert r.current == new


def test_a_new_incarnation_starts_over_and_a_single_report_supersedes_parts() -> None:
    big = report(900, 1).to_wire()
    parts = chunks.build(big, 50).parts
    r = Receiver()
    for p in parts:
        r.deliver(CH_REPORT_PART, p, incarnation=1)
    restarted = chunks.build(report(900, 3).to_wire(), 1).parts   # generation 1 again
    for p in restarted:
        r.deliver(CH_REPORT_PART, p, incarnation=2)
    assert r.current == report(900, 3).to_wire()
    r.deliver(CH_REPORT_PART, restarted[0], incarnation=2)
    r.deliver(CH_REPORT_PART, chunks.build(big, 2).parts[0], incarnation=2)
    small = report(3).to_wire()
    r.deliver(CH_REPORT, small, incarnation=2)
    assert r.current == small and r.assembler.pending(2) is None


@pytest.mark.parametrize("change,why", [
    ({"n": 1}, "not a part"), ({"i": 9}, "not a part"), ({"n": chunks.MAX_PARTS + 1}, "0..128"),
    ({"g": -1}, "'g'"), ({"g": True}, "'g'"), ({"h": 5}, "'h'"), ({"d": ""}, "'d'"),
    ({"d": "x" * (chunks.PART_BYTES + 1)}, "'d'"),
])
def test_malformed_parts_are_refused(change: dict, why: str) -> None:
    part = {**chunks.build(report(900).to_wire(), 1).parts[0], **change}
    with pytest.raises((TypeError, ValueError), match=why):
        chunks.Assembler().add(2, 1, part)


def test_a_part_contradicting_its_generation_or_digest_is_refused() -> None:
    parts = chunks.build(report(900).to_wire(), 1).parts
    a = chunks.Assembler()
    a.add(2, 1, parts[0])
    with pytest.raises(ValueError, match="contradicts"):
        a.add(2, 1, {**parts[0], "d": parts[0]["d"][:-1] + "#"})
    assert a.pending(2) is None
    forged = [{**p, "h": "0" * 16} for p in parts]
    for p in forged[:-1]:
        a.add(2, 1, p)
    with pytest.raises(ValueError, match="digest"):
        a.add(2, 1, forged[-1])


# ---------------------------------------------------------------------- the core
def test_two_cores_exchange_a_report_of_1000_services_in_parts() -> None:
    sender, receiver = core(1), core(2)
    local = report(1000).services
    out = sender.step(10.0, 1.7e9, facts(local=local))
    parts = [o for o in of(out, sc.Send) if o.channel == CH_REPORT_PART]
    assert parts and not [o for o in of(out, sc.Send) if o.channel == CH_REPORT]
    for o in parts[:-1]:
        assert receiver.on_report_part(1, 9, o.payload) == []
    assert 1 not in receiver.known                      # not before the last part
    assert of(receiver.on_report_part(1, 9, parts[-1].payload), sc.Wake)
    assert receiver.known[1][1].services == local
    # the periodic copy of the same generation is its name only: nothing new here
    [again] = of(sender.step(12.5, 1.7e9, facts(local=local)), sc.Send)
    assert again.channel == chunks.CH_REPORT_HAVE and again.dest is None
    assert again.payload == {"g": parts[0].payload["g"], "n": len(parts),
                             "h": parts[0].payload["h"], "x": 1}
    assert receiver.on_report_have(1, 9, again.payload) == []
    # every FULL_REFRESH seconds the whole report again, the same generation
    full = [o for o in of(sender.step(10.0 + chunks.FULL_REFRESH, 1.7e9, facts(local=local)),
                          sc.Send) if o.channel == CH_REPORT_PART]
    assert [o.payload for o in full] == [o.payload for o in parts]
    assert all(receiver.on_report_part(1, 9, o.payload) == [] for o in full)


def test_at_rest_a_member_that_lost_a_part_asks_for_it_and_gets_only_that() -> None:
    sender, receiver, fresh = core(1), core(2), core(3)
    local = report(1000).services
    parts = [o for o in of(sender.step(10.0, 1.7e9, facts(local=local)), sc.Send)
             if o.channel == CH_REPORT_PART]
    for o in parts[:2] + parts[3:]:                    # part 2 lost on the way to node 2
        receiver.on_report_part(1, 9, o.payload)
    assert 1 not in receiver.known
    [have] = of(sender.step(12.0, 1.7e9, facts(local=local)), sc.Send)
    [want] = of(receiver.on_report_have(1, 9, have.payload), sc.Send)
    assert (want.dest, want.channel, want.payload) == (1, chunks.CH_REPORT_WANT,
                                                       {"g": have.payload["g"], "i": [2]})
    [resent] = of(sender.on_report_want(2, want.payload), sc.Send)
    assert (resent.dest, resent.payload) == (2, parts[2].payload)
    assert of(receiver.on_report_part(1, 9, resent.payload), sc.Wake)
    assert receiver.known[1][1].services == local
    # a member that heard nothing of it (it just started) wants every part
    [want3] = of(fresh.on_report_have(1, 9, have.payload), sc.Send)
    assert want3.payload["i"] == list(range(len(parts)))
    sent = of(sender.on_report_want(3, want3.payload), sc.Send)
    assert [o.payload for o in sent] == [o.payload for o in parts] and {o.dest for o in sent} == {3}
    # at most once a WANT_EVERY per member; a want of another generation gets nothing
    assert sender.on_report_want(3, want3.payload) == []
    sender.step(12.0 + chunks.WANT_EVERY, 1.7e9, facts(local=local))
    assert len(of(sender.on_report_want(3, want3.payload), sc.Send)) == len(parts)
    sender.step(14.5, 1.7e9, facts(local=local))
    assert sender.on_report_want(2, {"g": have.payload["g"] - 1, "i": [0]}) == []


VIEW3 = View(ViewId(4, 1, 10), ((1, 10), (2, 20), (3, 30)))


def _singles(out) -> list:
    return [o for o in of(out, sc.Send) if o.channel == CH_REPORT]


def test_at_rest_a_report_in_one_message_is_named_by_its_generation_once_members_read_that(
) -> None:
    """A report that fits in one message is repeated whole every 2 s only while a member
    of the view has not said that it reads the have of such a report (an older version):
    once each has, the periodic copy is the have alone; a member that lost the report
    wants it and gets it, alone; FULL_REFRESH still sends it whole."""
    sender, two, three = core(1), core(2), core(3)
    local = report(50).services
    f = facts(view=VIEW3, local=local)
    [whole] = _singles(sender.step(10.0, 1.7e9, f))
    gen = whole.payload["g"]
    two.on_report(1, 10, whole.payload)
    # nothing heard from nodes 2 and 3 yet: the periodic copy is the report itself
    assert _singles(sender.step(12.0, 1.7e9, f))
    theirs = {}
    for src, member in ((2, two), (3, three)):
        [sent] = _singles(member.step(10.0, 1.7e9, facts(view=VIEW3)))
        theirs[src] = sent.payload
        sender.on_report(src, src * 10, sent.payload)
    # an older member's report (no generation): still the report every 2 s
    sender.on_report(3, 30, {k: v for k, v in theirs[3].items() if k != "g"})
    assert _singles(sender.step(14.0, 1.7e9, f))
    sender.on_report(3, 30, theirs[3])
    [have] = of(sender.step(16.0, 1.7e9, f), sc.Send)
    assert have.channel == chunks.CH_REPORT_HAVE and have.dest is None
    assert have.payload == {"g": gen, "n": 1, "h": chunks.digest(chunks.encode(whole.payload))}
    assert len(chunks.encode(have.payload)) < 60
    # node 2 holds it: nothing; node 3 lost it: it wants it and gets it, alone
    assert two.on_report_have(1, 10, have.payload) == []
    [want] = of(three.on_report_have(1, 10, have.payload), sc.Send)
    assert (want.dest, want.channel, want.payload) == (1, chunks.CH_REPORT_WANT,
                                                       {"g": gen, "i": [0]})
    [again] = of(sender.on_report_want(3, want.payload), sc.Send)
    assert (again.dest, again.channel, again.payload) == (3, CH_REPORT, whole.payload)
    assert of(three.on_report(1, 10, again.payload), sc.Wake)
    assert three.known[1][1].services == local
    assert three.on_report_have(1, 10, have.payload) == []
    # an older have (reordered) wants nothing; a new incarnation of the sender does
    assert two.on_report_have(1, 10, {**have.payload, "g": gen - 1}) == []
    assert of(two.on_report_have(1, 11, have.payload), sc.Send)
    # a want of another generation gets nothing; every FULL_REFRESH the report whole
    sender.step(17.5, 1.7e9, f)
    assert sender.on_report_want(2, {"g": gen + 1, "i": [0]}) == []
    assert not _singles(sender.step(12.0 + chunks.FULL_REFRESH, 1.7e9, f))
    assert _singles(sender.step(14.0 + chunks.FULL_REFRESH, 1.7e9, f))   # sent whole at 14
    # a changed report goes whole at once, with the next generation
    [changed] = _singles(sender.step(14.0 + chunks.FULL_REFRESH + 0.5, 1.7e9,
                                     facts(view=VIEW3, local=report(51).services)))
    assert changed.payload["g"] == gen + 1


def test_a_member_whose_report_is_in_parts_says_it_reads_a_single_have() -> None:
    sender, big = core(1), core(2)
    f = facts(view=View(ViewId(4, 1, 10), ((1, 10), (2, 20))), local=report(5).services)
    sender.step(10.0, 1.7e9, f)
    big_local = report(1000).services
    for o in of(big.step(10.0, 1.7e9, facts(local=big_local)), sc.Send):
        sender.on_report_part(2, 20, o.payload)
    assert _singles(sender.step(12.0, 1.7e9, f))          # not said yet
    [have] = of(big.step(12.0, 1.7e9, facts(local=big_local)), sc.Send)
    assert have.payload["x"] == 1 and have.payload["n"] > 1
    sender.on_report_have(2, 20, have.payload)
    [mine] = of(sender.step(14.0, 1.7e9, f), sc.Send)
    assert mine.channel == chunks.CH_REPORT_HAVE and mine.payload["n"] == 1


def test_one_message_reports_at_rest_converge_on_a_lossy_network() -> None:
    rnd = random.Random(5)
    view = View(ViewId(4, 1, 10), ((1, 10), (2, 20)))
    for trial in range(30):
        sender, receiver = core(1), core(2)
        [theirs] = _singles(receiver.step(1.0, 1.7e9, facts(view=view)))
        sender.on_report(2, 20, theirs.payload)
        t, local = 10.0, report(20 + trial).services
        for k in range(60):
            if k == 20:
                local = report(40 + trial, seed=1).services     # a change at rest
            _deliver_half(rnd, sender.step(t, 1.7e9, facts(view=view, local=local)),
                          sender, receiver, 10)
            if k > 20 and 1 in receiver.known and receiver.known[1][1].services == local:
                break
            t += 2.0
        assert receiver.known[1][1].services == local, trial


def test_a_have_for_a_report_the_core_no_longer_holds_wants_it_again() -> None:
    sender, receiver = core(1), core(2)
    local = report(1000).services
    for o in of(sender.step(10.0, 1.7e9, facts(local=local)), sc.Send):
        receiver.on_report_part(1, 9, o.payload)
    assert 1 in receiver.known
    del receiver.known[1]                   # as if dropped: the assembler alone has it
    [have] = of(sender.step(12.0, 1.7e9, facts(local=local)), sc.Send)
    [want] = of(receiver.on_report_have(1, 9, have.payload), sc.Send)
    assert len(want.payload["i"]) == have.payload["n"]


def _deliver_half(rnd: random.Random, outputs, sender: sc.ServicesCore,
                  receiver: sc.ServicesCore, incarnation: int) -> None:
    """Node 1's outputs to node 2, and node 2's wants back, each message lost with
    probability one half; what node 1 sends again for a want, lost the same way."""
    def deliver(o: sc.Send) -> None:
        if o.channel == CH_REPORT:
            receiver.on_report(1, incarnation, o.payload)
        elif o.channel == CH_REPORT_PART:
            receiver.on_report_part(1, incarnation, o.payload)

    for o in of(outputs, sc.Send):
        if rnd.random() < 0.5:
            continue
        deliver(o)
        if o.channel == chunks.CH_REPORT_HAVE:
            for w in of(receiver.on_report_have(1, incarnation, o.payload), sc.Send):
                if rnd.random() < 0.5:
                    continue
                for back in of(sender.on_report_want(2, w.payload), sc.Send):
                    if rnd.random() >= 0.5:
                        deliver(back)


def test_reports_at_rest_converge_on_a_lossy_network() -> None:
    """Half of every message lost, both ways: a receiver still holds the sender's report
    within a few periods, and a report that changes is taken in its new generation."""
    rnd = random.Random(4)
    for trial in range(20):
        sender, receiver = core(1), core(2)
        local = report(600 + trial).services
        t = 10.0
        for _ in range(40):
            _deliver_half(rnd, sender.step(t, 1.7e9, facts(local=local)), sender, receiver, 9)
            if 1 in receiver.known and receiver.known[1][1].services == local:
                break
            t += 2.0
        assert receiver.known[1][1].services == local, trial


@pytest.mark.parametrize("payload,why", [
    ({"g": 1, "n": 0, "h": "0" * 16}, "not a split report"), ({"g": -1, "n": 3, "h": "0" * 16}, "'g'"),
    ({"g": 1, "n": 3, "h": 7}, "'h'"), ([], "object"), ({"g": 1, "n": 1, "h": 7}, "'h'"),
    ({"g": "1", "n": 1, "h": "0" * 16}, "'g'"), ({"g": 1, "h": "0" * 16}, "'n'"),
])
def test_malformed_haves_are_refused(payload, why) -> None:
    with pytest.raises((TypeError, ValueError), match=why):
        core(2).on_report_have(1, 9, payload)


@pytest.mark.parametrize("payload,why", [
    ({"g": 1, "i": []}, "'i'"), ({"g": 1, "i": [-1]}, "'i'"), ({"g": 1, "i": "0"}, "'i'"),
    ({"g": 1, "i": [True]}, "'i'"), ({"g": 1, "i": list(range(200))}, "'i'"),
    ({"i": [0]}, "'g'"), ("x", "object"),
])
def test_malformed_wants_are_refused(payload, why) -> None:
    with pytest.raises((TypeError, ValueError), match=why):
        core(1).on_report_want(2, payload)


def test_a_report_too_large_even_in_parts_is_refused_with_one_log_line_a_minute(
        monkeypatch, caplog) -> None:
    monkeypatch.setattr(chunks, "MAX_PARTS", 2)
    c = core(1)
    local = report(1000).services
    caplog.set_level(logging.INFO, "clusterd.node.services_glue")
    for t in (10.0, 12.5, 15.0, 71.0):
        out = c.step(t, 1.7e9, facts(local={**local, "service:x": LocalService(
            busy=f"{t}")}))                               # a new report every time
        assert not [o for o in of(out, sc.Send) if o.channel.startswith("svc.report")]
    lines = [r.getMessage() for r in caplog.records if "not sent" in r.getMessage()]
    assert len(lines) == 2, lines                         # 10.0 and 71.0
    assert "svc.report report not sent" in lines[0] and "for 1001 services" in lines[0]
    assert f"over the {2 * chunks.PART_BYTES}-byte limit" not in lines[0]
    assert f"over the {chunks.MAX_REPORT_BYTES}-byte limit" in lines[0]
    assert "members keep this node's previous report" in lines[0]
    assert "(2 more refused in the last 60 s)" in lines[1]
    assert c.refusals.refused == 4


def test_an_oversize_command_is_refused_where_it_is_built(caplog) -> None:
    c = core(1)
    caplog.set_level(logging.ERROR)
    cmd = Command(3, "1.1", "service:" + "w" * MAX_APP_PAYLOAD, CommandKind.START)
    assert c.command("n2", cmd, facts()) == []
    assert any(f"{CH_COMMAND} message not sent" in r.getMessage()
               and f"over the {MAX_APP_PAYLOAD}-byte limit" in r.getMessage()
               for r in caplog.records)


class _Port:
    """A port whose send raises as the wire layer does for an oversize payload."""

    name, nodeid = "n1", 1

    def __init__(self) -> None:
        self.sent: list = []

    def send_app(self, dest, channel, payload) -> None:
        if oversize(payload) is not None:
            raise ValueError(f"app payload on {channel!r} is over the limit")
        self.sent.append((dest, channel, payload))


def test_the_services_cycle_never_raises_on_an_oversize_send(caplog) -> None:
    """The glue's send is the last line: should a builder not check, the wire layer's
    ValueError is logged (rate-limited) and the cycle goes on."""
    from clusterd.node.services_glue import ServicesGlue
    glue = ServicesGlue.__new__(ServicesGlue)
    glue.port, glue.core = _Port(), core(1)
    glue.now = lambda: 5.0
    caplog.set_level(logging.ERROR)
    glue.send(None, "svc.other", {"x": "y" * MAX_APP_PAYLOAD})
    glue.send(None, "svc.other", {"x": "y" * MAX_APP_PAYLOAD})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "svc.other message not sent" in lines[0]


# ---------------------------------------------------------------------- control ops
class _Glue:
    name, me = "n2", 2

    def __init__(self, coordinator: bool) -> None:
        self.coordinator = coordinator
        self.sent: list = []
        self.last_snapshot = None
        self.core = core(2)

    def facts(self) -> sc.Facts:
        return facts()

    def now(self) -> float:
        return 1.0

    def is_coordinator(self) -> bool:
        return self.coordinator

    def send(self, dest, channel, payload) -> None:
        self.sent.append((dest, channel, payload))


def test_a_forwarded_request_too_large_is_a_clear_error_to_the_cli(caplog) -> None:
    glue = _Glue(coordinator=False)
    ops = ServiceOps(glue)
    handler = ops._handler("svc.enable")
    with pytest.raises(ControlError) as err:
        asyncio.run(handler({"service": "s" * MAX_APP_PAYLOAD}, None))
    assert err.value.code == "too_large" and "not forwarded to the coordinator" in \
        err.value.message
    assert glue.sent == [] and ops._waiting == {}
    assert any(f"{CH_REQUEST} request not sent" in r.getMessage() for r in caplog.records)


def test_a_reply_too_large_is_an_error_for_the_requester() -> None:
    coordinator = ServiceOps(_Glue(coordinator=True))
    reply = coordinator._reply("2.1", "svc.candidates",
                               {"services": {"s": "x" * MAX_APP_PAYLOAD}}, 2)
    assert oversize(reply) is None and "run it on the coordinator (n2)" in reply["error"]

    async def scenario() -> None:
        requester = ServiceOps(_Glue(coordinator=False))
        fut = asyncio.get_running_loop().create_future()
        requester._waiting["2.1"] = fut
        requester.on_response(reply)
        with pytest.raises(ControlError, match="limit of one cluster message") as err:
            await fut
        assert err.value.code == "too_large"
        assert reply["result"]["code"] < 0     # what an older requester shows instead
    asyncio.run(scenario())
    assert CH_RESPONSE == "svc.resp"


# ---------------------------------------------------------------------- fence state
def test_a_fence_state_over_the_limit_is_cut_completed_and_oldest_first() -> None:
    ops = [{"node": f"n{i:03d}", "phase": "done" if i % 2 else "pending", "since": float(i),
            "last_error": "e" * 900} for i in range(64)]
    payload = {"v": 1, "epoch": 3, "written": 1.0, "ops": ops}
    assert oversize(payload) is not None
    cut, dropped = fit(payload)
    assert oversize(cut) is None and dropped > 0
    kept = {o["node"] for o in cut["ops"]}
    assert all(o["node"] in kept for o in ops if o["phase"] == "pending")
    assert [o["node"] for o in cut["ops"]] == sorted(kept)


def test_the_refusal_log_names_channel_size_limit_and_what_happens() -> None:
    logger = logging.getLogger("test.refusals")
    log = RefusalLog(logger, "n1")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: seen.append(r.getMessage())
    logger.addHandler(handler)
    try:
        assert log.refuse(0.0, "svc.report", 40000, "parts", services=500)
        assert not log.refuse(59.0, "svc.report", 40000, "parts", services=500)
        assert log.refuse(10.0, "fence.state", 40000, "cut")     # per channel
        assert log.refuse(60.0, "svc.report", 40000, "parts", services=500)
    finally:
        logger.removeHandler(handler)
    assert seen[0] == ("node n1: svc.report message not sent: 40000 bytes encoded for 500 "
                       f"services, over the {MAX_APP_PAYLOAD}-byte limit; instead: parts")
    assert seen[2].endswith("(1 more refused in the last 60 s)")
