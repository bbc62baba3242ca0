"""clusterd.truth: the one boolean parser and the one secret-name rule, as tables, and
every former parser now answering the same."""

from __future__ import annotations

import time

import pytest
from clusterd import logsetup, truth
from clusterd.fencing.redact import MASK as FENCE_MASK
from clusterd.fencing.redact import Redactor
from clusterd.placement.config import services_from_rm
from clusterd.resources.agents import metadata
from clusterd.truth import bool_or_none, mask_assignments, parse_bool
from lxml import etree

# value -> words dialect, numeric dialect (None: refused)
BOOLS = {
    "1": (True, True), "0": (False, False),
    "yes": (True, None), "YES": (True, None), " on ": (True, None), "true": (True, None),
    "True": (True, None), "no": (False, None), "off": (False, None), "false": (False, None),
    "2": (None, None), "-1": (None, None), "y": (None, None), "n": (None, None),
    "": (None, None), " 1": (True, None), "enabled": (None, None), "1abc": (None, None),
}


@pytest.mark.parametrize(("value", "words", "numeric"),
                         [(k, *v) for k, v in sorted(BOOLS.items())])
def test_boolean_table(value: str, words: bool | None, numeric: bool | None) -> None:
    assert bool_or_none(value) is words
    assert bool_or_none(value, numeric=True) is numeric
    if words is None:
        with pytest.raises(ValueError, match=r"is not a boolean: use 1/0, yes/no, "
                                             r"true/false or on/off"):
            parse_bool(value, "monitor_link")
    else:
        assert parse_bool(value, "monitor_link") is words
    if numeric is None:
        with pytest.raises(ValueError) as exc:
            parse_bool(value, "autostart", numeric=True)
        assert str(exc.value) == (f'autostart="{value}" is not 1 or 0: RHCS read this '
                                  "attribute as a number (atoi), so a word here meant 0 "
                                  "there; write 1 or 0")
    else:
        assert parse_bool(value, "autostart", numeric=True) is numeric


@pytest.mark.parametrize(("value", "words"), [(k, v[0]) for k, v in sorted(BOOLS.items())])
def test_the_agents_parser_is_the_one_parser(value: str, words: bool | None) -> None:
    if words is None:
        with pytest.raises(ValueError):
            metadata.parse_bool(value)
    else:
        assert metadata.parse_bool(value) is words


@pytest.mark.parametrize(("value", "numeric"), [(k, v[1]) for k, v in sorted(BOOLS.items())])
def test_placement_reads_the_numeric_dialect(value: str, numeric: bool | None) -> None:
    rm = etree.Element("rm")
    etree.SubElement(rm, "service", name="web", exclusive=value)
    if numeric is None:
        with pytest.raises(Exception, match="is not 1 or 0"):
            services_from_rm(rm)
    else:
        (service,), _domains = services_from_rm(rm)
        assert service.exclusive is numeric


# text -> masked (the assignment forms a log line or an agent may print)
ASSIGNMENTS = {
    "agent said passwd=hunter2 ipaddr=10.0.0.1": "agent said passwd=*** ipaddr=10.0.0.1",
    "Password: other-secret": "Password: ***",
    "--snmp-priv-passwd zzz --ip 10.0.0.1": "--snmp-priv-passwd *** --ip 10.0.0.1",
    '{"passwd": "two words", "login": "admin"}': '{"passwd": "***", "login": "admin"}',
    "{'secret_key': 'x'}": "{'secret_key': '***'}",
    "community=public1, api_token: t0k": "community=***, api_token: ***",
    "passwd_script=/usr/bin/pw keyfile=/etc/k": "passwd_script=/usr/bin/pw keyfile=/etc/k",
    "cluster keys: passwd=x": "cluster keys: passwd=***",
    "authkey is missing": "authkey is missing",
    "the token timeout 1000": "the token timeout 1000",
    "- passwd=x": "- passwd=***",
    "hexadecimal-kg=00ff": "hexadecimal-kg=***",
}


@pytest.mark.parametrize(("text", "masked"), sorted(ASSIGNMENTS.items()))
def test_assignments_of_secret_names_are_masked(text: str, masked: str) -> None:
    assert mask_assignments(text, "***") == masked
    assert logsetup.redact(text) == masked


def test_agent_output_is_masked_by_the_same_rule() -> None:
    out = Redactor().redact("Password: other-secret\nlogin: admin\n")
    assert out == f"Password: {FENCE_MASK}\nlogin: admin\n"


@pytest.mark.parametrize("text", ["key:" * 25_000, "keys:" * 20_000, "a" * 100_000,
                                  "--key " * 16_000, "-" * 100_000])
def test_masking_is_linear_on_hostile_text(text: str) -> None:
    started = time.perf_counter()
    mask_assignments(text, "*")
    assert time.perf_counter() - started < 2.0     # quadratic would take minutes


def test_numeric_bools_name_real_attributes() -> None:
    assert ("cman", "two_node") in truth.NUMERIC_BOOLS
    assert all(len(key) == 2 for key in truth.NUMERIC_BOOLS)
