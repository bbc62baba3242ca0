"""What a parameter means, decided once: is this value true, is this name a secret.

Pure and dependency-free, so that conf, fencing, resource agents and logging all import
it without importing each other.

**Booleans** (:func:`parse_bool`). One vocabulary, two dialects:

* *words* (the default): ``1 yes true on`` / ``0 no false off``, any case, surrounding
  blanks ignored. This is what the agents' own scripts accept for their boolean
  parameters (ip.sh ``monitor_link="yes"`` in rgmanager's test configs, fence-agents'
  boolean options), and what clusterd reads ``__enforce_timeouts`` with (rgmanager's
  restree.c ``do_load_resource()``: ``atoi(v) > 0 || !strcasecmp(v, "yes")``, so there
  ``true``/``on`` meant off; clusterd, as before, reads them as on).
* *numeric* (``numeric=True``): exactly ``1`` or ``0``. For the attributes cman, fenced
  and rgmanager read with ``atoi()`` (:data:`NUMERIC_BOOLS`: cman ``two_node``,
  fence_daemon ``clean_start``, failoverdomain ``ordered``/``restricted``/``nofailback``
  (fo_domain.c ``atoi(ret) != 0``), service/vm ``autostart``/``exclusive`` (groups.c
  ``!strcmp(v, "no") || atoi(v) == 0`` / ``!strcmp(v, "yes") || atoi(v) > 0``), which
  cluster.rng documents as "set to 1 ... set to 0"). A word there meant 0 to RHCS
  (``autostart="yes"`` disabled autostart), so reading it by its meaning would change
  what a migrated file does, and reading it as 0 would surprise its author: it is
  refused, with that explanation. ``ccs_config_validate`` refused these already; every
  RHCS file in ``reference/`` uses 1/0 there.

Anything else (``2``, ``y``, an empty value) is refused with a sentence naming the
attribute, the value and what to write.

**Secret names** (:func:`is_secret_param`). A parameter holds a secret when its name,
lower-cased with ``-`` read as ``_``, contains one of :data:`SECRET_WORDS` or ends in one
of :data:`SECRET_ENDINGS` (``key``: ``ssh_key``, ``apikey``; ``_kg``: IPMI Kg), except
names ending in :data:`NOT_SECRET_SUFFIXES`, which name a program or a file holding the
secret (``passwd_script``, ``keyfile``, ``identity_file``), not the secret itself.
``private`` is not a word of its own: the private things agents take are keys
(``private_key``) or files (``private_key_file``). Where a rule applies (fence devices and
``<rm>`` in cluster.conf, fence agent options, resource agent parameters, log lines, the
collection's no_log checks) is up to its user; the rule is this one.

The redhat.cluster collection cannot import clusterd and keeps copies: the secret rule in
``module_utils/_clusterd/secrets.py`` (kept equal, data and code, by
tests/collection/test_secret_rule.py) and the boolean words in
``module_utils/_clusterd/options.py`` (tests/collection/test_truth_copies.py).
"""

from __future__ import annotations

import re
from functools import lru_cache

TRUE_WORDS = ("1", "yes", "true", "on")
FALSE_WORDS = ("0", "no", "false", "off")
NUMERIC_VALUES = ("0", "1")
# (element, attribute) that RHCS read with atoi(): only 1 and 0 (see the module docstring).
NUMERIC_BOOLS = frozenset({
    ("cman", "two_node"), ("fence_daemon", "clean_start"),
    ("failoverdomain", "ordered"), ("failoverdomain", "restricted"),
    ("failoverdomain", "nofailback"),
    ("service", "autostart"), ("service", "exclusive"),
    ("vm", "autostart"), ("vm", "exclusive"),
    ("quorumd", "master_wins"),         # qdisk's main.c: atoi()
})

SECRET_WORDS = ("passwd", "password", "secret", "token", "community", "credential")
SECRET_ENDINGS = ("key", "_kg")
NOT_SECRET_SUFFIXES = ("_script", "file", "path")

_TRUTH = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}
WORDS_HINT = "use 1/0, yes/no, true/false or on/off"


def bool_or_none(value: str, *, numeric: bool = False) -> bool | None:
    """The truth of ``value`` in the dialect, or None when the dialect refuses it."""
    if numeric:
        return {"1": True, "0": False}.get(value)
    return _TRUTH.get(value.strip().lower())


def parse_bool(value: str, where: str = "value", *, numeric: bool = False) -> bool:
    """``value`` as a boolean; ValueError naming ``where`` (the attribute), the value and
    what to write when the dialect refuses it (see the module docstring)."""
    truth = bool_or_none(value, numeric=numeric)
    if truth is not None:
        return truth
    if numeric:
        raise ValueError(f"{where}=\"{value}\" is not 1 or 0: RHCS read this attribute as a "
                         "number (atoi), so a word here meant 0 there; write 1 or 0")
    raise ValueError(f"{where}=\"{value}\" is not a boolean: {WORDS_HINT}")


@lru_cache(maxsize=4096)  # a config repeats the same few names many times
def is_secret_param(name: str) -> bool:
    """True when a parameter named ``name`` holds a secret value (module docstring)."""
    n = name.strip().lower().replace("-", "_")
    if n.endswith(NOT_SECRET_SUFFIXES):
        return False
    return n.endswith(SECRET_ENDINGS) or any(word in n for word in SECRET_WORDS)


# ``key=value``, ``key: value``, ``"key": "value"`` and ``--key value`` in free text, for
# keys holding a secret word (then confirmed by is_secret_param). Linear: a key starts at a
# token boundary, the lookahead scans its token once (lookarounds never backtrack), the
# token is taken whole (possessive), and a value is read only after a secret key, from
# where the search then resumes; a key that is not secret never swallows what follows it.
_KEY_WORDS = "|".join(re.escape(w).replace("_", "[_-]") for w in (*SECRET_WORDS,
                                                                    *SECRET_ENDINGS))
_ASSIGNMENT = re.compile(
    rf"(?<![\w-])(?=-{{0,2}}[\w-]*?(?:{_KEY_WORDS}))"
    rf"(?:(?P<dkey>--?\w[\w-]*+)[\"']?(?:[ \t]*[=:][ \t]*|[ \t]+)"
    rf"|(?P<key>\w[\w-]*+)[\"']?[ \t]*[=:][ \t]*)",
    re.IGNORECASE)
# A value stops at blanks, quotes, "," and ";", and at NUL (joined texts are NUL-separated).
_VALUE = re.compile(r"\"[^\"\n\x00]*\"|'[^'\n\x00]*'|[^\s\"',;\x00]+")


def mask_assignments(text: str, mask: str) -> str:
    """``text`` with the value of every secret-named assignment replaced by ``mask``
    (``passwd=x``, ``password: x``, ``"secret": "x"``, ``--snmp-priv-passwd x``); quotes
    around a value stay."""
    out: list[str] = []
    done = pos = 0
    while text and (m := _ASSIGNMENT.search(text, pos)) is not None:
        pos = m.end()
        if not is_secret_param((m["dkey"] or m["key"]).lstrip("-")):
            continue
        value = _VALUE.match(text, pos)
        if value is None:
            continue
        quote = value[0][0] if len(value[0]) > 1 and value[0][0] in "'\"" else ""
        out.append(f"{text[done:pos]}{quote}{mask}{quote}")
        done = pos = value.end()
    return "".join(out) + text[done:] if out else text
