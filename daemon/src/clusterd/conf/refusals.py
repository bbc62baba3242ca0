"""What clusterd refuses although cluster.rng lets it through (issue 12, "refused with a
clear message"); every message names the element, the value and what to do.

Rules on a canonical ``<cluster>`` tree (:func:`refusal_problems`, called by the semantic
validation; one pass each, linear in the size of the tree):

* **Control characters in names.** A name (``name``, ``ref``, ``domain``, ``depend``, a
  resource's ``address``) holding a control character (C0, DEL or C1: Unicode ``Cc``)
  ends up in element paths, logs, command lines and clustat columns, where it hides or
  forges text. NUL and most C0 characters cannot be in XML at all: the parser refuses
  them; the ones XML allows (tab, newline, DEL, C1) are refused here.
* **Two nodes at one address.** clusterd tells peers apart by the address their packets
  come from, resolved from ``clusternode@name`` as the daemon resolves it
  (``node.wiring.resolve_address``: an IP literal as such, else the first IPv4 of the
  name). The rule takes a resolver so that validation stays pure: by default only IP
  literals are compared; ``ccs_config_validate``, ``cluster_admin`` and proposals on a
  node pass the daemon's (:func:`system_resolver`). A name that does not resolve is not
  this rule's business.
* **An expected_votes that lets a minority be quorate.** cman's quorum is
  ``expected_votes / 2 + 1`` (integer division; commands.c ``calculate_quorum()``,
  ``(expected_votes + 2) / 2``) until the members' own votes raise it, so two groups that
  form apart (a cluster started while partitioned) are both quorate when quorum is at most
  half of all the votes there are: the nodes' ``votes`` (default 1) plus a
  ``<quorumd>``'s ``votes`` (qdisk(5): default one less than the number of nodes). An
  explicit ``expected_votes`` with ``2 * quorum <= total`` is refused with the smallest
  safe value, ``2 * (total // 2)``; cman(5) warns that "improper use of this option can
  result in more than one partition gaining quorum". ``two_node="1"`` (with
  ``expected_votes="1"`` and exactly two one-vote nodes, checked by the two_node rule) is
  the documented exception: fencing breaks that tie.
* **``__enforce_timeouts``** must be a boolean clusterd.truth reads (restree.c took
  ``yes`` or a positive number; anything else was silently off).

:func:`unwritable_problems` checks the arguments of an edit or an admin request before a
tree is built from them: text XML 1.0 cannot hold (NUL, other C0 controls, unpaired
surrogates, U+FFFE/U+FFFF) anywhere, and control characters in names, each named by its
argument path (secret values are never shown).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lxml import etree

from clusterd.conf.rng import RawProblem
from clusterd.errors import Problem
from clusterd.truth import bool_or_none, is_secret_param, parse_bool

# Attributes whose value is a name (or the primary key a resource is referenced by).
NAME_ATTRS = ("name", "ref", "domain", "depend", "address")
_NAME_RANK = {key: i for i, key in enumerate(NAME_ATTRS)}

# Argument keys (edits, admin requests) whose value becomes a name.
NAME_KEYS = frozenset({"name", "node", "ref", "domain", "depend", "member", "service"})
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

Resolver = Callable[[str], "str | None"]


def literal_address(name: str) -> str | None:
    """The address of a node named by an IP literal; None for a host name (not resolved)."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return None


def system_resolver() -> Resolver:
    """The daemon's own resolution (``node.wiring.resolve_address``), None when a name does
    not resolve. Blocking (DNS): call it where blocking is allowed (a CLI, a thread)."""
    from clusterd.node.wiring import resolve_address  # the daemon's; imported on use

    def resolve(name: str) -> str | None:
        try:
            return resolve_address(name)
        except (OSError, ValueError, UnicodeError):
            return None

    return resolve


def visible(value: str) -> str:
    """``value`` with every control or non-XML character written as an escape (``\\x00``)."""
    return "".join(c.encode("unicode_escape").decode("ascii")
                   if CONTROL.match(c) or NOT_XML.match(c) else c for c in value)


_CONTROL_NAMES = {"\x00": "NUL", "\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN",
                  "\x1b": "ESCAPE", "\x7f": "DELETE"}


def _char(c: str) -> str:
    name = (unicodedata.name(c, "") or _CONTROL_NAMES.get(c)
            or ("a control character" if CONTROL.match(c) else
                "an unpaired surrogate" if 0xD800 <= ord(c) <= 0xDFFF else "a non-character"))
    return f"U+{ord(c):04X} ({name})"


# --- rules on a tree ----------------------------------------------------------------


def refusal_problems(root: etree._Element,
                     resolve: Resolver = literal_address) -> list[RawProblem]:
    """Every refusal of this module in a canonical ``<cluster>`` tree."""
    out: list[RawProblem] = []
    for el in root.iter(etree.Element):
        items = el.items()                   # one read of the attributes (most have few)
        if not items:
            continue
        named: list[tuple[int, str, str, re.Match[str]]] = []   # ranks differ: sorted by rank
        enforce = None
        for key, value in items:
            rank = _NAME_RANK.get(key)
            if rank is not None:
                if m := CONTROL.search(value):
                    named.append((rank, key, value, m))
            elif key == "__enforce_timeouts":
                enforce = value
        for _rank, key, value, m in sorted(named) if named else ():
            out.append(RawProblem(el, (
                f"{key}=\"{visible(value)}\" holds the control character {_char(m[0])}: "
                "names end up in paths, logs and command lines, where it would hide or "
                "forge text; rename it with letters, digits, '_', '.' and '-'")))
        if enforce is not None and bool_or_none(enforce) is None:
            try:
                parse_bool(enforce, "__enforce_timeouts")
            except ValueError as exc:
                out.append(RawProblem(el, str(exc)))
    out.extend(address_problems(root, resolve))
    out.extend(quorum_problems(root))
    return out


def address_problems(root: etree._Element, resolve: Resolver) -> list[RawProblem]:
    """Two nodes whose names resolve to the same address (``resolve`` returns None for a
    name that does not resolve). Each name is resolved once."""
    out: list[RawProblem] = []
    seen_names: set[str] = set()
    owner: dict[str, str] = {}
    for node in root.iterfind("clusternodes/clusternode"):
        name = node.get("name")
        if not name or name.lower() in seen_names:
            continue                        # missing or duplicate names are reported apart
        seen_names.add(name.lower())
        address = resolve(name)
        if address is None:
            continue
        if address in owner:
            out.append(RawProblem(node, (
                f"node \"{name}\" resolves to {address}, the address of node "
                f"\"{owner[address]}\": clusterd tells nodes apart by address and could not "
                "tell which one sent a heartbeat; give each node its own address (fix DNS "
                "or /etc/hosts, or name the node by its own cluster interface address)")))
        else:
            owner[address] = name
    return out


def _votes(el: etree._Element | None, default: int) -> int | None:
    """An element's ``votes`` (``default`` when unset); None when not a whole number (the
    value rules report it)."""
    if el is None:
        return default
    text = el.get("votes")
    if text is None:
        return default
    text = text.strip()
    return int(text) if text.isdigit() else None


def quorum_problems(root: etree._Element) -> list[RawProblem]:
    """An explicit expected_votes at which two disjoint groups could both be quorate."""
    cman = root.find("cman")
    if cman is None or cman.get("two_node") == "1":
        return []                           # no explicit value, or the two_node rule's
    text = (cman.get("expected_votes") or "").strip()
    if not text.isdigit() or int(text) < 1:
        return []                           # absent, or reported by the value rules
    expected = int(text)
    nodes = root.findall("clusternodes/clusternode")
    node_votes = [_votes(n, 1) for n in nodes]
    quorumd = root.find("quorumd")
    disk = _votes(quorumd, max(len(nodes) - 1, 1)) if quorumd is not None else 0
    if disk is None or any(v is None for v in node_votes):
        return []
    node_total = sum(v for v in node_votes if v is not None)
    total = node_total + disk
    quorum = expected // 2 + 1
    if 2 * quorum > total:
        return []
    holders = (f"the nodes ({node_total}) and the quorum disk ({disk})" if quorumd is not None
               else "the nodes")
    remedy = f"set expected_votes to at least {2 * (total // 2)}"
    if quorumd is None:
        remedy += f" or remove it (the cluster then expects all {total})"
    exception = (" (two nodes of one vote each may instead set two_node=\"1\" with "
                 "expected_votes=\"1\", where fencing breaks the tie)"
                 if quorumd is None and node_votes == [1, 1] else "")
    return [RawProblem(cman, (
        f"expected_votes=\"{expected}\" lets a minority be quorate: quorum is {quorum} "
        f"(expected_votes/2 + 1) while {holders} hold {total} votes, so two groups that "
        f"cannot see each other could each reach quorum ({quorum}) and both run services; "
        f"{remedy}{exception}"))]


# --- arguments, before a tree is built --------------------------------------------------


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """``(path, last key, text)`` of every string in nested mappings and lists (keys too),
    without recursion."""
    stack: list[tuple[Any, str, str]] = [(value, path, "")]
    while stack:
        item, here, key = stack.pop()
        if isinstance(item, str):
            yield here, key, item
        elif isinstance(item, Mapping):
            for k, v in reversed(list(item.items())):
                name = str(k)
                child = f"{here}.{name}" if here else name
                yield child, "", name        # the key itself: an attribute name
                stack.append((v, child, name))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, f"{here}[{i}]", key) for i, v in reversed(list(enumerate(item))))


def unwritable_problems(where: str, value: Any, path: str = "") -> list[Problem]:
    """Every string in ``value`` (arguments) that cluster.conf cannot hold, or a name with a
    control character, named by its argument path under ``where``."""
    out: list[Problem] = []
    seen: set[str] = set()
    for here, key, text in _walk(value, path):
        bad = NOT_XML.search(text)
        if bad is None and key in NAME_KEYS:
            bad = CONTROL.search(text)
        if bad is None or here in seen:
            continue
        seen.add(here)
        shown = ("(value not shown: a secret)" if is_secret_param(key)
                 else f"\"{visible(text)}\"")
        what = ("cluster.conf (XML 1.0) cannot hold it" if NOT_XML.match(bad[0])
                else "a name cannot hold control characters")
        shown_path = visible(here) or "value"
        out.append(Problem(f"{where}: {shown_path}" if where else shown_path,
                           f"{shown} holds {_char(bad[0])}: {what}; remove it"))
    return out
