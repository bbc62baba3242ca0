"""Which cluster.conf parameters are secrets, and how they are masked.

Rule: a parameter is secret when it sits on a fence device (``fencedevice``, ``device``)
or on anything inside ``<rm>`` and its name is secret by :func:`clusterd.truth.
is_secret_param`, the one secret-name rule of conf, fencing, resource agents, logging and
the collection (``passwd``, ``password``, ``secret``, ``token``, ``community``,
``credential`` anywhere, or ending in ``key`` or ``_kg``; not a name ending in
``_script``, ``file`` or ``path``, which names a program or a file holding the secret).
Elements outside those scopes carry no secrets: ``totem@token`` is a timer and
``cman@keyfile`` a path.

Masking never hides a name. Exports and diffs mask the secret attributes themselves
(:func:`masked_copy`). Messages (:func:`redact`) mask the value of every secret-named
assignment (``passwd="..."``), and mask secret values wherever else they appear, except a
value that is also the value (or a word of the value) of a non-secret attribute: a device
named like its password is shown by its name everywhere else, so masking that value would
only turn the device's name into ``********`` in paths and messages, and hide nothing.
"""

from __future__ import annotations

import copy as _copy
import dataclasses
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Self, TypeVar

from lxml import etree

from clusterd.errors import Problem
from clusterd.truth import (
    SECRET_ENDINGS,
    SECRET_WORDS,
    is_secret_param,
    mask_assignments,
)

MASK = "********"
_SEP = "\0"  # never in cluster.conf text (XML 1.0 cannot carry NUL)
_P = TypeVar("_P", bound=Problem)

_SECRET_SCOPE_TAGS = frozenset({"fencedevice", "device"})
_WORD = re.compile(r"\w+")
# Every secret name holds one (lower-cased, as is_secret_param reads it).
_NAME_WORDS = tuple(w.lower() for w in (*SECRET_WORDS, *SECRET_ENDINGS))


def in_secret_scope(el: etree._Element) -> bool:
    """True when ``el``'s attributes are parameters that may be secret."""
    if el.tag in _SECRET_SCOPE_TAGS:
        return True
    return any(anc.tag == "rm" for anc in el.iterancestors())


class SecretValues(frozenset):
    """The secret values to mask by value (a frozenset), true as soon as the tree holds
    any secret parameter value, even when every one is also a name and so is masked only
    where it is assigned: callers that skip redaction for a tree without secrets
    (``if secrets:``) still mask ``passwd="..."`` then."""

    present: bool

    def __new__(cls, values: Iterable[str] = (), present: bool = False) -> Self:
        self = super().__new__(cls, values)
        self.present = present or len(self) > 0
        return self

    def __bool__(self) -> bool:
        return self.present


def secret_values(root: etree._Element) -> SecretValues:
    """The secret parameter values to mask in messages about the tree: every non-empty
    one, except a value that also is, or is a word of, a non-secret attribute's value (a
    node, device or service name, a nodeid ...): that one is masked only where it is
    assigned to a secret name (module docstring). Linear in the size of the tree."""
    if not any(value and is_secret_param(key)
               for el in _in_scope(root) for key, value in el.items()):
        return SecretValues()                # most files: no set of the scope is built
    scope = set(_in_scope(root))
    found: set[str] = set()
    shown: set[str] = set()
    for el in root.iter(etree.Element):
        secret_scope = el in scope
        for key, value in el.attrib.items():
            if secret_scope and is_secret_param(key):
                if value:
                    found.add(value)
            else:
                shown.add(value)
                shown.update(_WORD.findall(value))
    return SecretValues(found - shown, present=True)


def _in_scope(root: etree._Element) -> Iterator[etree._Element]:
    """The elements ``in_secret_scope`` holds true for (some twice), without walking
    every element's ancestors: fence devices, and everything below an ``<rm>``."""
    yield from root.iter(*_SECRET_SCOPE_TAGS)
    for rm in root.iter("rm"):
        yield from rm.iterdescendants(etree.Element)


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
    """Mask the value of every secret-named assignment in ``text`` and every whole-token
    occurrence of one of ``values`` (from :func:`secret_values`)."""
    for value in sorted(set(values), key=len, reverse=True):
        if value:
            text = re.sub(r"(?<!\w)" + re.escape(value) + r"(?!\w)", MASK, text)
    return mask_assignments(text, MASK)


def redact_all(texts: Sequence[str], values: Iterable[str]) -> list[str]:
    """``[redact(text, values) for text in texts]``, with one search per secret value
    over all the texts instead of one per text (many problems, many secrets)."""
    ordered = [v for v in sorted(set(values), key=len, reverse=True) if v]
    if not texts:
        return list(texts)
    if any(_SEP in v for v in ordered) or any(_SEP in t for t in texts):
        return [redact(text, ordered) for text in texts]
    joined = _SEP.join(texts)   # _SEP is no word character: the same boundaries as apart
    for value in ordered:
        if value in joined:
            joined = re.sub(r"(?<!\w)" + re.escape(value) + r"(?!\w)", MASK, joined)
    if not _names_secret(joined):
        return joined.split(_SEP)
    return [mask_assignments(text, MASK) if _names_secret(text) else text
            for text in joined.split(_SEP)]


def redact_problems(found: Sequence[_P], values: Iterable[str]) -> list[_P]:
    """The problems with ``values`` redacted in where and reason (one ``redact_all`` over
    all of them); each keeps its type and other fields."""
    texts = redact_all([text for p in found for text in (p.where, p.reason)], values)
    return [dataclasses.replace(p, where=where, reason=reason)
            for p, where, reason in zip(found, texts[::2], texts[1::2], strict=True)]


def _names_secret(text: str) -> bool:
    """Whether ``text`` may hold a secret-named assignment (a cheap test first)."""
    low = text.lower()
    return any(word in low for word in _NAME_WORDS)


def mask_params(params: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(key, value)`` pairs with secret values masked (for repr and logs)."""
    return [(k, MASK if is_secret_param(k) else v) for k, v in params]
