"""One secret-name rule: the collection's copy (module_utils/_clusterd/secrets.py, which
must not import clusterd) says what clusterd.truth says, data and code, and on a table of
real fence and resource parameter names whose decision is pinned here. Every daemon user
of a secret-name rule (conf, fencing, resource agents, logging) asks clusterd.truth."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import textwrap
from pathlib import Path

import pytest
from clusterd import truth
from clusterd.conf import secrets as conf_secrets
from clusterd.fencing import redact as fence_redact
from clusterd.resources.agents import metadata as agent_metadata

SECRETS = (Path(__file__).resolve().parents[2] / "collections/ansible_collections/redhat/"
           "cluster/plugins/module_utils/_clusterd/secrets.py")


def _collection():
    spec = importlib.util.spec_from_file_location("rhc_collection_secrets", SECRETS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _body(func) -> str:
    """The function's code without its decorators and docstring, as an AST dump."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    (node,) = tree.body
    assert isinstance(node, ast.FunctionDef)
    body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body
    return ast.dump(ast.Module(body=body, type_ignores=[]))


def test_the_rule_data_is_the_same() -> None:
    coll = _collection()
    assert coll.SECRET_WORDS == truth.SECRET_WORDS
    assert coll.SECRET_ENDINGS == truth.SECRET_ENDINGS
    assert coll.NOT_SECRET_SUFFIXES == truth.NOT_SECRET_SUFFIXES
    assert coll.MASKED == conf_secrets.MASK


def test_the_rule_code_is_the_same() -> None:
    assert _body(_collection().is_secret_param) == _body(truth.is_secret_param.__wrapped__)


# name -> secret? (every user must say so; the decision itself is pinned)
NAMES = {
    "passwd": True, "password": True, "Passwd": True, "snmp_priv_passwd": True,
    "community": True, "secret": True, "api_secret_key": True, "token": True,
    "auth_token": True, "ipmi_kg": True, "hexadecimal_kg": True, "hexadecimal-kg": True,
    "key": True, "ssh_key": True, "apikey": True, "private_key": True, "secret-key": True,
    "credentials": True, "credential": True, "test_passwd": True, "replication_passwd": True,
    "client_secret": True,
    # programs and files that hold a secret are not secrets
    "keyfile": False, "passwd_script": False, "password_script": False,
    "password-script": False, "snmp_priv_passwd_script": False, "identity_file": False,
    "credentials_file": False, "ssh_path": False, "private_key_file": False,
    # everything else
    "kg": False, "snmp_auth_prot": False, "ipaddr": False, "login": False, "port": False,
    "lanplus": False, "cipher": False, "address": False, "name": False, "agent": False,
    "unit": False, "monkey_business": False, "keys": False, "privlvl": False,
}


@pytest.mark.parametrize(("name", "secret"), sorted(NAMES.items()))
def test_every_user_agrees_on_secret_names(name: str, secret: bool) -> None:
    assert truth.is_secret_param(name) is secret
    assert _collection().is_secret_param(name) is secret
    assert conf_secrets.is_secret_param(name) is secret
    assert fence_redact.is_secret_key(name) is secret
    assert agent_metadata.is_secret_name(name) is secret
