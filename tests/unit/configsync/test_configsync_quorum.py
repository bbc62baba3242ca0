"""Changed only through quorum (issue 12 item 5): which configs a node pulls, installs and
counts as accepted, fed by hand; and which file a node starts with (startup.choose)."""

from __future__ import annotations

import pytest
from clusterd.conf import parse
from clusterd.configsync.core import ConfigSyncCore
from clusterd.configsync.model import sha256_hex
from clusterd.configsync.startup import choose
from clusterd.errors import ConfigError
from clusterd.events import ConfigAccepted, ConfigDisplaced, WriteConfig
from clusterd.wire.messages import ConfigRequest
from test_configsync_core import TOKEN, conf, transfer, validate

ALL = frozenset({1, 2, 3})


def node(nodeid: int, data: bytes | None, *, accepted: bool = True) -> ConfigSyncCore:
    return ConfigSyncCore(nodeid, data, validate, TOKEN, accepted=accepted)


def advert(c: ConfigSyncCore, peer: ConfigSyncCore, now: float = 0.0):
    return c.observe(peer.me, peer.running.version, peer.running.sha256, now,
                     accepted=peer.accepted)


# ---------------------------------------------------------------- who pulls what
def test_an_accepted_cluster_never_pulls_a_higher_unaccepted_config_from_outside() -> None:
    cluster = node(1, conf(5))
    cluster.set_view(frozenset({1, 2}), True, 0.0)
    stale = node(3, conf(9, "edited offline"), accepted=False)
    out = advert(cluster, stale)
    assert not out.sends and cluster.transfer.pull is None
    assert cluster.status(0.0)["unaccepted_peers"] == [
        {"node": 3, "version": 9, "sha256": stale.running.sha256}]
    assert not cluster.held


def test_an_unaccepted_node_outside_a_quorate_view_adopts_the_accepted_config() -> None:
    cluster = node(1, conf(5))
    stale = node(3, conf(9, "edited offline"), accepted=False)
    stale.set_view(frozenset({3}), False, 0.0)
    out = advert(stale, cluster)
    assert stale.held, "it stays out of views until it runs the cluster's config"
    assert [type(s.msg) for s in out.sends] == [ConfigRequest]
    events = transfer(stale, cluster, out)
    (displaced,) = [e for e in events if isinstance(e, ConfigDisplaced)]
    assert (displaced.version, displaced.by_version) == (9, 5)
    assert displaced.data == conf(9, "edited offline")
    (write,) = [e for e in events if isinstance(e, WriteConfig)]
    assert write.version == 5 and write.accepted
    assert stale.accepted and stale.running.version == 5 and not stale.held


def test_adopting_an_older_unaccepted_file_is_not_a_displacement() -> None:
    """A node with no accepted copy and an older file simply catches up."""
    cluster = node(1, conf(5))
    fresh = node(3, conf(2), accepted=False)
    events = transfer(fresh, cluster, advert(fresh, cluster))
    assert not [e for e in events if isinstance(e, ConfigDisplaced)]
    assert fresh.running.version == 5 and fresh.accepted


def test_a_higher_unaccepted_config_is_pulled_from_a_member_of_my_quorate_view() -> None:
    a = node(1, conf(1), accepted=False)
    b = node(2, conf(2, "first start, other file"), accepted=False)
    a.set_view(ALL, True, 0.0)
    out = advert(a, b)
    assert [type(s.msg) for s in out.sends] == [ConfigRequest]
    events = transfer(a, b, out)
    (write,) = [e for e in events if isinstance(e, WriteConfig)]
    assert write.version == 2 and not write.accepted and not a.accepted


def test_not_from_an_inquorate_view_while_an_accepted_config_is_in_sight() -> None:
    a = node(1, conf(1), accepted=False)
    b = node(2, conf(2), accepted=False)
    a.set_view(frozenset({1, 2}), False, 0.0)
    a.observe(3, 1, sha256_hex(conf(1, "the cluster's")), 0.0, accepted=True)
    out = advert(a, b)
    assert all(s.dest == 3 for s in out.sends), "it adopts node 3's, never node 2's"


def test_a_new_cluster_with_different_files_and_nothing_accepted_takes_the_newest() -> None:
    """No accepted config anywhere in sight and no quorate view (say the node with the
    most votes has another file): the newest file wins, as before acceptance existed."""
    a = node(1, conf(1), accepted=False)
    b = node(2, conf(2), accepted=False)
    a.set_view(frozenset({1}), False, 0.0)
    events = transfer(a, b, advert(a, b))
    (write,) = [e for e in events if isinstance(e, WriteConfig)]
    assert write.version == 2 and not write.accepted


# ---------------------------------------------------------------- acceptance
def test_a_first_start_config_is_accepted_when_every_member_of_a_quorate_view_runs_it() -> None:
    a = node(1, conf(1), accepted=False)
    for peer in (2, 3):
        a.observe(peer, 1, sha256_hex(conf(1)), 0.0, accepted=False)
    assert not a.set_view(frozenset({1, 2, 3}), False, 0.0).events, "inquorate: not yet"
    a.observe(3, 1, sha256_hex(conf(1, "other")), 0.1, accepted=False)
    assert not a.set_view(ALL, True, 0.1).events, "a member runs another file: not yet"
    a.observe(3, 1, sha256_hex(conf(1)), 0.2, accepted=False)
    (ev,) = a.set_view(ALL, True, 0.2).events
    assert isinstance(ev, ConfigAccepted) and ev.version == 1 and a.accepted


def test_a_peer_running_my_config_as_accepted_makes_it_accepted() -> None:
    a = node(3, conf(4), accepted=False)
    (ev,) = a.observe(1, 4, sha256_hex(conf(4)), 0.0, accepted=True).events
    assert isinstance(ev, ConfigAccepted) and a.accepted


def test_a_proposal_on_a_quorate_node_is_accepted_at_once() -> None:
    a = node(1, conf(4))
    (write,) = a.propose(conf(5), True, 0.0).events
    assert isinstance(write, WriteConfig) and write.accepted and a.accepted


def test_an_accepted_node_never_goes_back_to_a_lower_accepted_config() -> None:
    a = node(1, conf(6))
    a.set_view(frozenset({1}), False, 0.0)
    out = a.observe(2, 5, sha256_hex(conf(5)), 0.0, accepted=True)
    assert not out.sends and not a.held and a.running.version == 6


def test_heartbeat_flag_round_trips_on_v3_and_is_absent_on_v2() -> None:
    from clusterd.wire.messages import Heartbeat, _hb_from, _hb_to
    hb = Heartbeat(None, 3, "a" * 64, (), 1, None, held=False, unaccepted=True)
    assert _hb_from(_hb_to(hb, 3), 3).unaccepted
    assert not _hb_from(_hb_to(hb, 2), 2).unaccepted, "a v2 peer's config counts as accepted"
    assert _hb_to(hb, 2)["x"] == 0


# ---------------------------------------------------------------- startup.choose
def real(version: int, service: str = "a") -> bytes:
    xml = (f'<cluster name="c" config_version="{version}"><clusternodes>'
           '<clusternode name="n1" nodeid="1"/><clusternode name="n2" nodeid="2"/>'
           '<clusternode name="n3" nodeid="3"/></clusternodes>'
           f'<rm><service name="{service}" autostart="0"/></rm></cluster>')
    return parse(xml.encode(), source="test").canonical_bytes()


def pick(disk: bytes | None, copy: bytes | None):
    return choose(disk, copy, lambda data: parse(data, source="test"),
                  config_path="/etc/cluster/cluster.conf")


def test_the_file_runs_when_it_is_the_accepted_copy() -> None:
    c = pick(real(5), real(5))
    assert c.accepted and c.data == real(5) and c.pending is None and not c.rewrite


def test_a_first_start_runs_the_file_unaccepted() -> None:
    c = pick(real(5), None)
    assert not c.accepted and c.data == real(5) and "first start" in c.message


@pytest.mark.parametrize(("disk", "name"), [(real(9, "b"), "pending-9"),
                                             (real(5, "b"), "pending-5"),
                                             (b"<cluster", "pending-invalid")])
def test_an_edited_file_is_kept_pending_and_the_accepted_copy_runs(disk, name) -> None:
    c = pick(disk, real(5))
    assert c.accepted and c.data == real(5) and c.rewrite
    assert c.pending == disk and c.pending_name == name and c.level == "error"
    assert f"/etc/cluster/cluster.conf.{name}" in c.message
    assert "accepted config_version 5" in c.message
    assert f"clusterd conf propose /etc/cluster/cluster.conf.{name}" in c.message


def test_an_older_file_is_a_cut_short_write_and_is_replaced() -> None:
    c = pick(real(4), real(5))
    assert c.accepted and c.data == real(5) and c.rewrite and c.pending is None


def test_a_missing_file_is_written_back_from_the_accepted_copy() -> None:
    c = pick(None, real(5))
    assert c.accepted and c.rewrite and c.data == real(5)


def test_nothing_valid_to_run_is_refused() -> None:
    with pytest.raises(ConfigError):
        pick(b"<cluster", None)
