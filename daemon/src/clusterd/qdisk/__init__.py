"""The quorum disk (qdisk(5)): status blocks on a shared device, master election and
heuristics, giving ``<quorumd votes>`` to the partition that holds the disk.

* ``block.py``: the on-disk layout (a header written by ``mkqdisk`` and one signed status
  block per node), pure;
* ``election.py``: liveness on the disk, master election and the master's grant (pure,
  driven by one read of every block per cycle; the simulator and unit tests drive it);
* ``heuristics.py``: the ``<heuristic>`` programs, run on their own schedules (async);
* ``runner.py``: the cycle on a real device (O_DIRECT, in a thread), feeding the grant to
  the membership core (``MembershipCore.set_qdisk``).
"""
