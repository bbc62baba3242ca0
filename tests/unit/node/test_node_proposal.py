"""conf.propose / SIGHUP acceptance rules (pure): validation, name, version, conflict."""

from __future__ import annotations

import pytest
from clusterd.conf import parse
from clusterd.control import protocol as p
from clusterd.errors import ControlError
from clusterd.node.proposal import check_proposal
from node_testdata import conf_bytes

RUNNING = parse(conf_bytes(3))
LOCAL = "127.0.0.11"


def check(data: bytes):
    return check_proposal(RUNNING, data, local_name=LOCAL, parse=parse)


def test_higher_version_is_accepted():
    verdict = check(conf_bytes(4))
    assert verdict.changed and verdict.conf.version == 4
    assert verdict.reason == "config_version 3 -> 4 accepted"


def test_same_content_is_a_no_op():
    verdict = check(conf_bytes(3))
    assert not verdict.changed and verdict.conf is RUNNING


REFUSED = [
    (conf_bytes(3, names=("127.0.0.11", "127.0.0.12")), p.E_CONFLICT,
     "config_version 3 is already running with different content; raise config_version"),
    (conf_bytes(2), p.E_STALE_VERSION,
     "config_version 2 is older than the running 3; raise config_version"),
    (conf_bytes(4, name="beta"), p.E_INVALID_CONFIG,
     ('proposed cluster.conf: /cluster/@name: the running cluster "alpha" cannot be '
      'renamed to "beta": its cluster id (in every heartbeat) and every node\'s membership '
      'derive from the name, so the nodes would stop recognising each other; keep '
      'name="alpha", or stop clusterd on every node, tear the cluster down and bootstrap a '
      'new one named "beta" (a cluster is named only at bootstrap)')),
    (conf_bytes(4, names=("127.0.0.12", "127.0.0.13")), p.E_INVALID_CONFIG,
     ("proposed cluster.conf: /cluster/clusternodes: this node (127.0.0.11) is not in it; "
     "remove a node from another member")),
]


@pytest.mark.parametrize(("data", "code", "message"), REFUSED)
def test_refusals_name_the_reason(data, code, message):
    with pytest.raises(ControlError) as info:
        check(data)
    assert (info.value.code, info.value.message) == (code, message)


def test_invalid_config_reports_the_model_problems():
    bad = conf_bytes(4, names=("127.0.0.11", "127.0.0.11"))
    with pytest.raises(ControlError) as info:
        check(bad)
    assert info.value.code == p.E_INVALID_CONFIG
    assert info.value.message.startswith("proposed cluster.conf is invalid: ")
    assert "clusternode" in info.value.message
