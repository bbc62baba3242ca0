"""The collection's copy of the secret-parameter rule (module_utils/_clusterd/options.py,
which must not import clusterd) says what clusterd.conf.secrets says."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from clusterd.conf.secrets import is_secret_param as daemon_rule

OPTIONS = (Path(__file__).resolve().parents[2] / "collections/ansible_collections/redhat/"
           "cluster/plugins/module_utils/_clusterd/options.py")


def _collection_rule():
    spec = importlib.util.spec_from_file_location("rhc_collection_options", OPTIONS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.is_secret_param


NAMES = ["passwd", "password", "Passwd", "snmp_priv_passwd", "snmp_auth_prot", "community",
         "secret", "api_secret_key", "token", "auth_token", "ipmi_kg", "kg", "key", "keyfile",
         "passwd_script", "identity_file", "ssh_path", "ipaddr", "login", "port", "lanplus",
         "cipher", "address", "name", "agent", "unit"]


@pytest.mark.parametrize("name", NAMES)
def test_collection_and_daemon_agree_on_secret_names(name: str) -> None:
    assert _collection_rule()(name) is daemon_rule(name)
