"""A lease holder whose clock lost time (a VM suspended with its clock stopped) shortens
the support leases it holds by what its peers' send times show (PeerTable._check_clock)."""

from __future__ import annotations

import logging

from clusterd.membership.peers import PeerTable
from clusterd.wire.messages import Heartbeat, ViewId

VID = ViewId(2, 1, 7)


def hb(n: int, t_ms: int, ack: int | None = None) -> Heartbeat:
    return Heartbeat(VID, 1, "0" * 64, (1, 2), n=n, lease_ack=ack, t=t_ms)


def test_send_times_ahead_of_a_stopped_clock_shorten_the_leases(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="clusterd.membership.peers")
    table = PeerTable(token=1.0)
    table.record_sent(1, 10.0)
    table.heard(2, 5, hb(1, 50_000), 10.01)               # offset 40 s, 10 ms delay
    table.take_lease(2, hb(1, 50_000, ack=1), VID)
    assert table.support[2].expires == 11.0
    table.heard(2, 5, hb(2, 50_250), 10.26)               # steady: nothing changes
    table.heard(2, 5, hb(3, 50_255), 10.263)              # 2 ms faster: jitter, no line
    assert abs(table.support[2].expires - 10.998) < 1e-6 and not caplog.records
    # frozen at 10.26 for 1.5 s with the clock stopped: the buffered heartbeats arrive
    # at 10.27 by this clock, sent up to 1.5 s later by the peer's
    table.heard(2, 5, hb(4, 51_762), 10.27)
    assert abs(table.support[2].expires - (11.0 - 0.002 - 1.5)) < 1e-6 < table.lag_total
    assert [r.getMessage() for r in caplog.records] == [
        ("heartbeats from node 2 arrive 1.500 s earlier by my monotonic clock than any "
        "before: my clock stood still that long (a VM suspended with its clock stopped), "
        "or its first heartbeats were that slow; the support leases I hold are shortened "
        "by 1.500 s")]


def test_a_slow_or_frozen_peer_does_not_shorten_anything() -> None:
    table = PeerTable(token=1.0)
    table.record_sent(1, 10.0)
    table.heard(2, 5, hb(1, 50_000), 10.01)
    table.take_lease(2, hb(1, 50_000, ack=1), VID)
    table.heard(2, 5, hb(2, 50_100), 10.60)               # late delivery, or its clock stood
    assert table.support[2].expires == 11.0 and table.lag_total == 0.0


def test_a_lease_retaken_from_a_heartbeat_sent_before_the_lost_time_stays_short() -> None:
    """Seed 871070050318 (volume mix, clock_stops=0.7): the peer's packets read after the
    freeze still ack my heartbeat sent before it; retaking that lease from its send time
    made it whole again, and the resumed node stayed quorate beside a newer view."""
    table = PeerTable(token=1.0)
    table.record_sent(1, 10.0)
    table.heard(2, 5, hb(1, 50_000, ack=1), 10.01)
    table.take_lease(2, hb(1, 50_000, ack=1), VID)
    table.heard(2, 5, hb(2, 51_500, ack=1), 10.02)        # 1.49 s lost while frozen
    table.take_lease(2, hb(2, 51_500, ack=1), VID)
    assert abs(table.support[2].expires - (11.0 - 1.49)) < 1e-6
