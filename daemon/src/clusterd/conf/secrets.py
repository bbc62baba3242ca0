"""Which cluster.conf parameters are secrets, and how they are masked.

Rule (documented in docs/architecture.md): a parameter is secret when it sits on a fence
device (``fencedevice``, ``device``) or on anything inside ``<rm>`` and its lower-cased name
contains ``passwd``, ``password``, ``secret``, ``token``, ``key``, ``community`` or
``credential``, or ends in ``_kg`` (IPMI Kg key); EXCEPT names ending in ``_script``,
``file`` or ``path``, which name a program or a file holding the secret
(``passwd_script``, ``keyfile``, ``identity_file``), not the secret itself. Elements
outside those scopes carry no secrets: ``totem@token`` is a timer and ``cman@keyfile`` a
path. The redhat.cluster collection keeps a copy of this rule
(module_utils/_clusterd/secrets.py); tests/collection/test_secret_rule.py keeps the two
equal.
"""

from __future__ import annotations

import copy as _copy
import re
from collections.abc import Iterable

from lxml import etree

MASK = "********"

_SECRET_WORDS = ("passwd", "password", "secret", "token", "key", "community",
                 "credential")
_NOT_SECRET_SUFFIXES = ("_script", "file", "path")
_SECRET_SCOPE_TAGS = frozenset({"fencedevice", "device"})


def is_secret_param(name: str) -> bool:
    """True when a fence/resource parameter named ``name`` holds a secret value."""
    n = name.lower()
    if n.endswith(_NOT_SECRET_SUFFIXES):
        return False
    return n.endswith("_kg") or any(word in n for word in _SECRET_WORDS)


def in_secret_scope(el: etree._Element) -> bool:
    """True when ``el``'s attributes are parameters that may be secret."""
    if el.tag in _SECRET_SCOPE_TAGS:
        return True
    return any(anc.tag == "rm" for anc in el.iterancestors())


def secret_values(root: etree._Element) -> frozenset[str]:
    """Every non-empty secret parameter value found in the tree."""
    found = set()
    for el in root.iter(etree.Element):
        if not in_secret_scope(el):
            continue
        for key, value in el.attrib.items():
            if value and is_secret_param(key):
                found.add(value)
    return frozenset(found)


def masked_copy(root: etree._Element) -> etree._Element:
    """A deep copy of ``root`` with every secret parameter value replaced by MASK."""
    copy = _copy.deepcopy(root)
    for el in copy.iter(etree.Element):
        if not in_secret_scope(el):
            continue
        for key in list(el.attrib):
            if is_secret_param(key):
                el.set(key, MASK)
    return copy


def redact(text: str, values: Iterable[str]) -> str:
    """Replace every whole-token occurrence of a secret value in ``text`` with MASK."""
    for value in sorted(set(values), key=len, reverse=True):
        if value:
            text = re.sub(r"(?<!\w)" + re.escape(value) + r"(?!\w)", MASK, text)
    return text


def mask_params(params: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(key, value)`` pairs with secret values masked (for repr and logs)."""
    return [(k, MASK if is_secret_param(k) else v) for k, v in params]
