"""One secret-name rule: the collection's copy (module_utils/_clusterd/secrets.py, which
must not import clusterd) says what clusterd.conf.secrets says, word for word and on a
table of real fence and resource parameter names whose decision is pinned here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from clusterd.conf import secrets as daemon

SECRETS = (Path(__file__).resolve().parents[2] / "collections/ansible_collections/redhat/"
           "cluster/plugins/module_utils/_clusterd/secrets.py")


def _collection():
    spec = importlib.util.spec_from_file_location("rhc_collection_secrets", SECRETS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rule_data_is_the_same() -> None:
    coll = _collection()
    assert coll.SECRET_WORDS == daemon._SECRET_WORDS
    assert coll.NOT_SECRET_SUFFIXES == daemon._NOT_SECRET_SUFFIXES
    assert coll.MASKED == daemon.MASK


# name -> secret? (both sides must say so; the decision itself is pinned)
NAMES = {
    "passwd": True, "password": True, "Passwd": True, "snmp_priv_passwd": True,
    "community": True, "secret": True, "api_secret_key": True, "token": True,
    "auth_token": True, "ipmi_kg": True, "hexadecimal_kg": True, "key": True, "ssh_key": True,
    "credentials": True, "credential": True, "test_passwd": True, "replication_passwd": True,
    # programs and files that hold a secret are not secrets
    "keyfile": False, "passwd_script": False, "password_script": False,
    "snmp_priv_passwd_script": False, "identity_file": False, "credentials_file": False,
    "ssh_path": False,
    # everything else
    "kg": False, "snmp_auth_prot": False, "ipaddr": False, "login": False, "port": False,
    "lanplus": False, "cipher": False, "address": False, "name": False, "agent": False,
    "unit": False,
}


@pytest.mark.parametrize(("name", "secret"), sorted(NAMES.items()))
def test_collection_and_daemon_agree_on_secret_names(name: str, secret: bool) -> None:
    assert daemon.is_secret_param(name) is secret
    assert _collection().is_secret_param(name) is secret
