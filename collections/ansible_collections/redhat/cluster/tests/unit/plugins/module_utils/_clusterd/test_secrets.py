# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The secret rule and where the collection refuses secrets (pure, tables)."""

from __future__ import annotations

import pytest

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.secrets import (
    NO_LOG_OPTIONS,
    PlainSecret,
    check_args,
    is_secret_param,
    plain_secrets,
    refusal,
    secret_values,
    shape,
    split_secrets,
)

FENCE = NO_LOG_OPTIONS["fence_device"]


@pytest.mark.parametrize(("name", "secret"), [
    ("passwd", True), ("password", True), ("snmp_priv_passwd", True), ("community", True),
    ("credentials", True), ("api_token", True), ("ipmi_kg", True), ("hexadecimal_kg", True),
    ("passwd_script", False), ("identity_file", False), ("keyfile", False),
    ("credentials_file", False), ("ssh_path", False), ("ipaddr", False), ("login", False),
    ("port", False), ("kg", False),
])
def test_is_secret_param(name, secret):
    assert is_secret_param(name) is secret


def test_split_secrets():
    assert split_secrets({"ipaddr": "a", "passwd": "p", "passwd_script": "/s"}) == (
        {"ipaddr": "a", "passwd_script": "/s"}, {"passwd": "p"})


@pytest.mark.parametrize(("args", "no_log", "expected"), [
    # the no_log options themselves are never reported
    ({"params": {"ipaddr": "a"}, "secret_params": {"passwd": "p"}}, FENCE, []),
    ({"params": {"passwd": "p"}}, FENCE, [("params.passwd", "secret_params")]),
    ({"methods": [{"name": "m", "devices": [
        {"name": "d", "params": {"port": "1"}, "secret_params": {"passwd": "ok"}},
        {"name": "e", "params": {"community": "c"}}]}]}, FENCE,
     [("methods[0].devices[1].params.community", "methods[0].devices[1].secret_params")]),
    # a secret straight in a device dict belongs in that device's secret_params
    ({"methods": [{"name": "m", "devices": [{"name": "d", "passwd": "p"}]}]}, FENCE,
     [("methods[0].devices[0].passwd", "methods[0].devices[0].secret_params")]),
    ({"unfence": [{"name": "u", "params": {"key": "k"}}]}, FENCE,
     [("unfence[0].params.key", "unfence[0].secret_params")]),
    # secret_params where the module has none is itself a secret-named key (reported once)
    ({"methods": [{"name": "m", "secret_params": {"passwd": "p"}, "devices": []}]}, FENCE,
     [("methods[0].secret_params", None)]),
    ({"attrs": {"name": "db", "test_passwd": "p"}}, ("secret_attrs",),
     [("attrs.test_passwd", "secret_attrs")]),
    ({"attrs": {"api_token": "t"}, "resources": [{"type": "ocf", "attrs": {"name": "x"},
                                                  "children": [{"type": "script",
                                                                "attrs": {"password": "p"}}]}]},
     (), [("attrs.api_token", None), ("resources[0].children[0].attrs.password", None)]),
    # a dict option given as a string, as Ansible accepts it (JSON or k=v)
    ({"params": '{"ipaddr": "a", "passwd": "p"}'}, FENCE, [("params.passwd", "secret_params")]),
    ({"attrs": "name=db password=p"}, ("secret_attrs",), [("attrs.password", "secret_attrs")]),
    # empty values and non-secret names (a path, a script) are not secrets
    ({"params": {"passwd": "", "passwd_script": "/bin/pw", "keyfile": "/k"}}, FENCE, []),
])
def test_plain_secrets(args, no_log, expected):
    assert [(f.path, f.option) for f in plain_secrets(args, no_log)] == expected


def test_shape():
    assert shape("methods[0].devices[12].secret_params") == "methods[].devices[].secret_params"


def test_refusal_names_keys_and_options_never_values():
    found = [PlainSecret("params.passwd", "secret_params", "pw-1"),
             PlainSecret("attrs.token", None, "pw-2"),
             PlainSecret("resources[0].attrs.password", None, "pw-3"),
             PlainSecret("resources[1].attrs.key", None, "pw-4")]
    assert refusal(found, "cluster_service") == (
        "params.passwd looks like a secret: pass it in secret_params (no_log) instead; "
        "attrs.token, resources[0].attrs.password and resources[1].attrs.key look like "
        "secrets: cluster_service takes no secrets; a resource that needs one is defined with "
        "redhat.cluster.cluster_resource, its secret in secret_attrs (no_log), and referenced "
        "here as {type, ref}")
    assert refusal(found[1:2], "failover_domain") == (
        "attrs.token looks like a secret: failover_domain takes no secrets")


def test_check_args():
    assert check_args("fence_device", {"params": {"ipaddr": "a"}}) is None
    assert check_args("cluster_info", {"include_secrets": True}) is None
    assert check_args("cluster_conf", {"token": 5000}) is None
    msg, values = check_args("cluster_resource", {"attrs": {"name": "x", "password": "pw"}})
    assert msg == "attrs.password looks like a secret: pass it in secret_attrs (no_log) instead"
    assert values == ["pw"]


def test_secret_values_flattens_nested_values():
    found = [PlainSecret("a", None, {"x": ["p1", 7], "y": None}), PlainSecret("b", None, "p2")]
    assert sorted(secret_values(found)) == ["7", "p1", "p2"]
