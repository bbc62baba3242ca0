"""cluster.rng in forms libxml2 validates in linear time, accepting the same documents.

Two patterns of RHCS's ``cluster.rng`` make libxml2's RelaxNG validator superlinear:

* **Repeats nested in repeats.** A resource's children are ``CHILDREN = (CHILD)*`` with
  ``CHILD = (ip | fs | ... | RESOURCEACTION)*`` and ``RESOURCEACTION = action*``, and
  ``<resources>`` holds ``(CHILDREN)*``. libxml2 tries the ways to share the siblings out
  among the nested repeats: cubic time (200 global resources took 2.5 s, 500 over a
  minute). :func:`flatten_repeats` rewrites ``(x*)*`` as ``x*`` and ``(a | x*)*`` as
  ``(a | x)*``: the same language, and the same messages for what it refuses. The
  schema clusterd validates with (``rng.schema``) is flattened.
* **Interleave.** ``<cluster>`` and ``<rm>`` take their children in any order
  (``interleave``); libxml2 validates an interleave in time quadratic in the size of the
  subtree below it (a clean 1 MiB file: about 0.5 s). :func:`linear` makes a twin schema
  where such an interleave (each branch naming its own elements) is a ``group`` in branch
  order, and :meth:`Linear.rewrite` a copy of a tree with the children of those elements
  stably sorted into that order: the copy matches the twin exactly when the tree matches
  the schema. (``<clusternode>``'s interleave follows an ``altname`` and stays: it holds
  two elements at most.)
* **Many errors among many siblings.** The twin reports every invalid element, and each
  report's path (``/cluster/rm/service[17234]``) costs a walk over the siblings before
  it. In the twin each repeat ``x*`` also takes ``wrapper{x*}``, and the copy moves runs
  of ``CHUNK`` children of a long list into wrappers (a namespace no document can name):
  the same answer, with short walks.

``rng.schema_problems`` asks the twin "is it valid?" (linear); only a tree that is not
gets findings: from the schema itself (worded as libxml2 words them) up to
``rng.EXACT_LIMIT`` elements, from the twin (located back on the tree's own elements)
beyond.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from lxml import etree

RNG_NS = "{http://relaxng.org/ns/structure/1.0}"
_ZERO_OR_MORE = RNG_NS + "zeroOrMore"
# Patterns a branch may hold for its order not to matter (no text, no data, no names
# left open); anything else keeps its interleave.
_ORDERABLE = frozenset(RNG_NS + t for t in (
    "element", "ref", "optional", "zeroOrMore", "oneOrMore", "choice", "group", "empty",
    "attribute"))


def _body(node: etree._Element) -> list[etree._Element]:
    return [c for c in node if isinstance(c.tag, str)]


def _repeated(node: etree._Element) -> etree._Element | None:
    """What a ``zeroOrMore`` of one pattern repeats (None for anything else)."""
    inner = _body(node)
    return inner[0] if node.tag == _ZERO_OR_MORE and len(inner) == 1 else None


def flatten_repeats(rng: etree._Element) -> etree._Element:
    """``rng`` (a schema root, changed in place and returned) with ``(x*)*`` as ``x*``
    and ``(a | x*)*`` as ``(a | x)*``. Only ``zeroOrMore`` is undone (``(a | x*)+``
    holds the empty sequence, ``(a | x)+`` does not), through ``choice`` and ``ref``: a
    define used by one ref is changed in place, a shared one that is a repeat is
    referred to (from inside a repeat) by a new define holding what it repeats."""
    defines = {d.get("name"): d for d in rng.iter(RNG_NS + "define")}
    uses: dict[str, int] = {}
    for ref in rng.iter(RNG_NS + "ref"):
        uses[ref.get("name")] = uses.get(ref.get("name"), 0) + 1

    def undo(node: etree._Element, shared: bool) -> None:
        """``node`` is one alternative of what a ``zeroOrMore`` repeats."""
        if node.tag == RNG_NS + "ref":
            define = defines.get(node.get("name"))
            inner = _body(define) if define is not None else []
            if len(inner) != 1:
                return
            if uses[node.get("name")] == 1:
                undo(inner[0], shared)
            elif shared and _repeated(inner[0]) is not None:
                name = node.get("name") + ".item"      # "." cannot start an XML name
                if name not in defines:
                    defines[name] = etree.SubElement(rng, RNG_NS + "define", name=name)
                    defines[name].append(copy.deepcopy(_repeated(inner[0])))
                node.set("name", name)
        elif _repeated(node) is not None:
            inner = _repeated(node)
            node.getparent().replace(node, inner)
            undo(inner, shared)
        elif node.tag == RNG_NS + "choice":
            for option in _body(node):
                undo(option, shared)

    for shared in (False, True):   # a shared define is copied once it is flat itself
        for repeat in list(rng.iter(_ZERO_OR_MORE)):
            if repeat.getparent() is not None and _repeated(repeat) is not None:
                undo(_repeated(repeat), shared)
    return rng


# Edits a copy before it is validated: (copy, original element of each copied element).
Prune = Callable[[etree._Element, dict[etree._Element, etree._Element]], None]


@dataclass(frozen=True)
class Linear:
    """The linear twin of the schema (``twin``), and how a tree is rewritten to match it:
    per element name, the rank of each child name (the interleave's branch order) and
    the wrapper of each child name (for runs of children in long lists)."""

    schema: etree.RelaxNG
    ranks: Mapping[str, Mapping[str, int]]
    wraps: Mapping[str, Mapping[str, str]]

    def rewrite(self, root: etree._Element, prune: Prune | None = None
                ) -> tuple[etree._Element, dict[etree._Element, etree._Element]]:
        """``root`` itself when no element needs rewriting, else a rewritten copy; and
        the original element of each element of the copy (a wrapper: its parent's).
        ``prune`` edits the copy first (given it and the origin map)."""
        if prune is None \
                and not any(len(el) > CHUNK for el in _named(root, self.wraps)) \
                and not any(_unsorted(el, self.ranks[el.tag]) for el in _named(root, self.ranks)):
            return root, {}
        twin = copy.deepcopy(root)
        origin = dict(zip(twin.iter(), root.iter()))
        if prune is not None:
            prune(twin, origin)
        for el in _named(twin, self.ranks):
            rank = self.ranks[el.tag]
            if _unsorted(el, rank):
                el[:] = sorted(el, key=lambda c: _rank(c, rank, len(rank)))
        for el in [el for el in _named(twin, self.wraps) if len(el) > CHUNK]:
            _wrap(el, self.wraps[el.tag], origin)
        return twin, origin


def _named(root: etree._Element, names: Mapping[str, object]) -> Iterator[etree._Element]:
    """The elements of ``root`` with one of ``names`` (none for no names)."""
    return root.iter(*names) if names else iter(())


CHUNK = 256     # children per wrapper: an error's path then costs O(CHUNK + n / CHUNK)
# no document can name it in advance (random, as a version-4 UUID is; uuid itself would
# bring platform and its own caches into every daemon for this one name)
WRAP_NS = f"urn:x-clusterd-wrap:{os.urandom(16).hex()}"
WRAP_PREFIX = "clusterd-chunk"


def _rank(child: etree._Element, rank: Mapping[str, int], last: int) -> int:
    return rank.get(child.tag, last) if isinstance(child.tag, str) else last


def _unsorted(el: etree._Element, rank: Mapping[str, int]) -> bool:
    last = len(rank)
    ranks = [rank.get(c.tag, last) if isinstance(c.tag, str) else last for c in el]  # _rank
    return any(a > b for a, b in itertools.pairwise(ranks))


def _wrap(el: etree._Element, wraps: Mapping[str, str],
          origin: dict[etree._Element, etree._Element]) -> None:
    """Move each run of up to CHUNK consecutive children of one wrapped list into a
    wrapper (a child with text after it stays where it is: wrappers hold no text)."""
    children: list[etree._Element] = []
    run: list[etree._Element] = []
    tag = None
    for child in [*el, None]:
        wrapper = (wraps.get(child.tag) if child is not None and isinstance(child.tag, str)
                   and not (child.tail and child.tail.strip()) else None)
        if run and (wrapper != tag or len(run) == CHUNK):
            box = etree.Element(tag, nsmap={WRAP_PREFIX: WRAP_NS})
            box.extend(run)
            origin[box] = origin[el]
            children.append(box)
            run = []
        if wrapper is not None:
            run.append(child)
            tag = wrapper
        elif child is not None:
            children.append(child)
    el[:] = children


def _names(node: etree._Element, defines: Mapping[str, etree._Element],
           seen: frozenset[str] = frozenset()) -> set[str] | None:
    """The names of the elements a pattern holds at its own level (None when its order
    could matter: text, data, open names, or an unknown ref)."""
    if node.tag not in _ORDERABLE:
        return None
    if node.tag == RNG_NS + "element":
        name = node.get("name")
        return {name} if name and not node.get("ns") else None
    if node.tag == RNG_NS + "attribute":
        return set()
    if node.tag == RNG_NS + "ref":
        name = node.get("name")
        if name in seen or name not in defines:
            return None
        node, seen = defines[name], seen | {name}
    found: set[str] = set()
    for child in _body(node):
        names = _names(child, defines, seen)
        if names is None:
            return None
        found |= names
    return found


def _order(twin: etree._Element, defines: Mapping[str, etree._Element],
           element: etree._Element) -> dict[str, int] | None:
    """Make ``element``'s content interleave a group in branch order: the rank of each
    child name, or None where that would change what it accepts."""
    content = _body(element)
    interleaves = [c for c in content if c.tag == RNG_NS + "interleave"]
    if len(interleaves) != 1 or any(_names(c, defines) != set() for c in content
                                    if c is not interleaves[0]):
        return None   # only when the interleave holds all of the element's children
    branches = [_names(b, defines) for b in _body(interleaves[0])]
    if any(b is None for b in branches) or \
            sum(len(b) for b in branches) != len(set().union(*branches)):
        return None   # text, open names, or two branches sharing a name
    interleaves[0].tag = RNG_NS + "group"
    return {name: i for i, names in enumerate(branches) for name in names}


def _sites(node: etree._Element, defines: Mapping[str, etree._Element],
           sites: list[tuple[etree._Element, set[str]]], fixed: set[str],
           seen: frozenset[str] = frozenset()) -> bool:
    """Collect the repeats (``zeroOrMore`` of one pattern) an element's content holds at
    its own level with their child names, and the names of its other children; False
    where a long list must not be wrapped (interleave, oneOrMore, open names)."""
    for child in _body(node):
        tag = child.tag
        if tag == RNG_NS + "element":
            names = _names(child, defines)
            if names is None:
                return False
            fixed |= names
        elif tag == RNG_NS + "zeroOrMore" and _repeated(child) is not None:
            names = _names(_repeated(child), defines)
            if names is None:
                return False
            sites.append((child, names))
        elif tag == RNG_NS + "ref":
            name = child.get("name")
            if name in seen or name not in defines:
                return False
            if not _sites(defines[name], defines, sites, fixed, seen | {name}):
                return False
        elif tag in (RNG_NS + "group", RNG_NS + "optional", RNG_NS + "choice"):
            if not _sites(child, defines, sites, fixed, seen):
                return False
        elif tag != RNG_NS + "attribute" and tag in _ORDERABLE:
            return False      # oneOrMore, a zeroOrMore of a sequence ...
    return True


def linear(rng: etree._Element) -> Linear:
    """The linear twin of schema ``rng`` (which is not changed): see the module doc."""
    twin = copy.deepcopy(rng)
    defines = {d.get("name"): d for d in twin.iter(RNG_NS + "define")}
    owners: dict[str, list[etree._Element]] = {}
    for element in twin.iter(RNG_NS + "element"):
        owners.setdefault(element.get("name"), []).append(element)
    single = {name: els[0] for name, els in owners.items() if name and len(els) == 1}
    ranks = {name: rank for name, el in single.items()
             if (rank := _order(twin, defines, el)) is not None}
    wrappers: dict[etree._Element, str] = {}     # repeat -> its wrapper's tag
    wraps: dict[str, dict[str, str]] = {}
    for name, el in single.items():
        sites: list[tuple[etree._Element, set[str]]] = []
        fixed: set[str] = set()
        if not _sites(el, defines, sites, fixed):
            continue
        every = [n for _site, names in sites for n in names]
        if len(every) != len(set(every)) or set(every) & fixed:
            continue          # a name two parts may take: a run might be split among them
        for site, names in sites:
            if not names:
                continue      # a repeat of attributes (open fence device parameters)
            if site not in wrappers:
                wrappers[site] = f"{{{WRAP_NS}}}w{len(wrappers)}"
            wraps.setdefault(name, {}).update(dict.fromkeys(names, wrappers[site]))
    for i, (site, tag) in enumerate(wrappers.items()):  # Y* -> (Y | wrapper{Y*})*
        body = f"clusterd.w{i}.body"
        define = etree.SubElement(twin, RNG_NS + "define", name=body)
        define.append(_repeated(site))
        choice = etree.SubElement(site, RNG_NS + "choice")
        etree.SubElement(choice, RNG_NS + "ref", name=body)
        box = etree.SubElement(choice, RNG_NS + "element", name=tag.split("}")[1], ns=WRAP_NS)
        etree.SubElement(etree.SubElement(box, RNG_NS + "zeroOrMore"), RNG_NS + "ref",
                         name=body)
    return Linear(etree.RelaxNG(etree.ElementTree(twin)), ranks, wraps)
