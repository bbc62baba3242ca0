"""set_alert: one <clusterd><alert/>, idempotent, validated whole, exported back."""

from __future__ import annotations

import pytest
from clusterd.conf import parse
from clusterd.conf.edit import set_alert
from clusterd.conf.export import export
from clusterd.errors import ConfigError

BASE = parse(b'<cluster name="a" config_version="1"><clusterd admin_group="ops"/>'
             b'<clusternodes><clusternode name="n1" nodeid="1"/></clusternodes></cluster>')
HOOK = "/usr/libexec/clusterd/alerts/alert_webhook"


def test_create_change_and_remove_one_alert():
    one = set_alert(BASE, "hook", program=HOOK, recipient="http://h/", events=["fence"])
    assert one.version == 2
    el = one.root.find("clusterd/alert")
    assert (el.get("program"), el.get("recipient"), el.get("events")) == (HOOK, "http://h/",
                                                                          "fence")
    assert one.root.find("clusterd").get("admin_group") == "ops"     # the rest is kept
    assert set_alert(one, "hook", program=HOOK, recipient="http://h/", events=["fence"]) is one
    assert set_alert(one, "hook") is one                              # all left alone
    two = set_alert(one, "hook", recipient="", events=[], timeout=9)
    el = two.root.find("clusterd/alert")
    assert el.get("recipient") is None and el.get("events") is None and el.get("timeout") == "9"
    gone = set_alert(two, "hook", state="absent")
    assert gone.root.find("clusterd/alert") is None
    assert gone.root.find("clusterd").get("admin_group") == "ops"    # not removed: not empty
    alone = set_alert(set_alert(parse(gone.canonical_bytes().replace(
        b' admin_group="ops"', b"")), "x", program=HOOK), "x", state="absent")
    assert alone.root.find("clusterd") is None                       # empty: removed


def test_export_feeds_back_unchanged():
    conf = set_alert(BASE, "hook", program=HOOK, recipient="http://h/", timeout=5,
                     events=["node", "service"])
    (args,) = export(conf)["alerts"]
    assert set_alert(conf, **args) is conf


@pytest.mark.parametrize(("kwargs", "words"), [
    ({}, "program: required for a new alert"),
    ({"program": "sh -c 'x'"}, "shell or interpreter"),
    ({"program": HOOK, "timeout": 0}, "not 1..3600"),
    ({"program": HOOK, "events": ["node", "disk"]}, "unknown disk"),
])
def test_refused_changes_change_nothing_and_say_why(kwargs, words):
    with pytest.raises(ConfigError) as err:
        set_alert(BASE, "hook", **kwargs)
    assert words in str(err.value)
