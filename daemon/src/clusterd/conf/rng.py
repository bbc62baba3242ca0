"""The shipped RelaxNG schema (RHCS 3.0.12 ``cluster.rng``) and readable errors from it.

libxml2's RelaxNG messages are terse and often name a parent ("Element cluster failed to
validate content") rather than the cause. We keep libxml2's message but (1) locate it with
our element path, (2) add precise checks derived from the schema itself (which attributes
and child elements each element may have), and (3) drop a generic libxml2 message when a
precise problem was found at or below the same element. Nothing here hard-codes what the
schema says: the attribute/child tables are computed from cluster.rng at first use.
Validation takes time linear in the size of the file and the number of findings
(``rnglinear``: the forms of the schema libxml2 validates in linear time), and may run
in several threads at once.
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from lxml import etree

from clusterd.conf.rnglinear import (
    RNG_NS,
    WRAP_NS,
    WRAP_PREFIX,
    Linear,
    Prune,
    flatten_repeats,
    linear,
)

SCHEMA_NAME = "the RHCS 3.0.12 cluster.rng"

# libxml2 messages that only say "something below failed" (the cause is reported elsewhere).
_GENERIC_TYPES = frozenset({
    "RELAXNG_ERR_CONTENTVALID", "RELAXNG_ERR_INTERSEQ", "RELAXNG_ERR_INTEREXTRA",
    "RELAXNG_ERR_ATTRVALID", "RELAXNG_ERR_EXTRACONTENT", "RELAXNG_ERR_NOGRAMMAR",
    "RELAXNG_ERR_ELEMWRONG", "RELAXNG_ERR_INTERNODATA", "RELAXNG_ERR_ELEMEXTRANS",
    "RELAXNG_ERR_ELEMNOTEMPTY", "RELAXNG_ERR_NOTELEM",
})
# ID/IDREF findings duplicate the semantic "device names an existing fencedevice" rule,
# which names the element; they are dropped in favour of it.
_IDREF = re.compile(r"IDREF attribute|ID .* redefined|Invalid ID|ID .* already defined")


@dataclass(frozen=True)
class RawProblem:
    """A problem before de-duplication: the element it concerns (or None) and why."""

    element: etree._Element | None
    reason: str
    generic: bool = False  # "something at or below this element failed"
    local: bool = False  # a schema finding about this element's own attribute values


@cache
def _rng_doc() -> etree._ElementTree:
    # beside this module (a wheel installs package data as files): importlib.resources
    # would bring tempfile, shutil and zipfile into every daemon for this one read
    data = (Path(__file__).parent / "schema" / "cluster.rng").read_bytes()
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    # RHCS 3.0.12's schema is closed; our extension resource types (systemd, ocf) are
    # spliced in the way RHCS-late's ccs_update_schema added installed agents, and so is
    # clusterd's own <clusterd> element; fence device parameters are opened (each agent's
    # own metadata checks them: conf/fenceparams.py).
    from clusterd.conf.clusterd_element import extend_schema as add_clusterd_element
    from clusterd.conf.fenceparams import extend_schema as open_fence_options
    from clusterd.resources.agents.rng import extend_schema

    # Then repeats nested in repeats are undone (same language, linear in libxml2).
    return etree.ElementTree(flatten_repeats(open_fence_options(add_clusterd_element(
        extend_schema(etree.fromstring(data, parser))))))


def schema_text() -> str:
    """The schema as text (for ``ccs_config_validate --print-schema`` and xmllint)."""
    return etree.tostring(_rng_doc(), encoding="unicode", pretty_print=True)


@cache
def schema() -> etree.RelaxNG:
    """The compiled schema, loaded once on first use."""
    return etree.RelaxNG(_rng_doc())


@cache
def _linear() -> Linear:
    return linear(_rng_doc().getroot())


def release() -> bool:
    """Drop the parsed and compiled schema and what is derived from it (about 3 MB of
    libxml2 and Python structures); the next validation builds them again (about 30 ms).
    True when anything was held. Safe while another thread validates: it keeps the
    objects it already took."""
    held = any(f.cache_info().currsize for f in (_rng_doc, schema, _linear, rules))
    for f in (_rng_doc, schema, _linear, rules, _unknown_attribute):
        f.cache_clear()
    return held


def is_valid(root: etree._Element) -> bool:
    """Whether ``root`` (in its own document) matches the schema, in linear time
    (``rnglinear``: the same answer as ``schema().validate``)."""
    twin = _linear()
    tree, _origin = twin.rewrite(root)
    return _validate(twin.schema, tree)[0]


_VALIDATING = threading.Lock()  # a RelaxNG object keeps one error log: one use at a time


def _validate(validator: etree.RelaxNG, tree: etree._Element
              ) -> tuple[bool, list[etree._LogEntry]]:
    """Whether ``tree`` (in its own document) matches, and libxml2's findings if not;
    callable from several threads at once (a daemon validates in worker threads)."""
    with _VALIDATING:
        ok = bool(validator.validate(tree.getroottree()))
        return ok, [] if ok else list(validator.error_log)


@dataclass(frozen=True)
class ElementRule:
    attributes: frozenset[str]
    children: frozenset[str]
    text: bool


@cache
def rules() -> dict[str, ElementRule]:
    """Per element name: every attribute / child element any definition of it allows."""
    root = _rng_doc().getroot()
    defines = {d.get("name"): d for d in root.iter(RNG_NS + "define")}
    attrs: dict[str, set[str]] = {}
    kids: dict[str, set[str]] = {}
    text: dict[str, bool] = {}

    def walk(node: etree._Element, owner: str, seen: set[str]) -> None:
        for child in node:
            if not isinstance(child.tag, str):
                continue
            tag = child.tag[len(RNG_NS):] if child.tag.startswith(RNG_NS) else None
            if tag == "element":
                kids[owner].add(child.get("name"))
            elif tag == "attribute":
                attrs[owner].add(child.get("name"))
            elif tag == "text":
                text[owner] = True
            elif tag == "ref":
                name = child.get("name")
                if name not in seen and name in defines:
                    walk(defines[name], owner, seen | {name})
            elif tag is not None:
                walk(child, owner, seen)

    for el in root.iter(RNG_NS + "element"):
        name = el.get("name")
        attrs.setdefault(name, set())
        kids.setdefault(name, set())
        walk(el, name, set())
    return {
        name: ElementRule(frozenset(attrs[name]), frozenset(kids[name]), text.get(name, False))
        for name in attrs
    }


def _preview(names: frozenset[str], limit: int = 12) -> str:
    shown = sorted(names)[:limit]
    more = f" (and {len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(shown) + more if shown else "none"


@lru_cache(maxsize=4096)  # the same mistake repeated on many elements is worded once
def _unknown_attribute(tag: str, key: str) -> str:
    allowed = rules()[tag].attributes
    import difflib  # only for a mistake: not in an idle daemon's memory

    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.7)
    hint = f"did you mean '{close[0]}'?" if close else f"allowed: {_preview(allowed)}"
    return (f"attribute '{key}' is not allowed on <{tag}> by {SCHEMA_NAME}; remove or "
            f"rename it ({hint})")


def structure_problems(root: etree._Element) -> list[RawProblem]:
    """Unknown elements, misplaced children and unknown attributes, per cluster.rng."""
    table = rules()
    found: list[RawProblem] = []
    if root.tag != "cluster":
        return [RawProblem(root, f"the root element must be <cluster>, not <{root.tag}>")]
    for el in root.iter(etree.Element):
        rule = table.get(el.tag)
        parent = el.getparent()
        if rule is None:
            found.append(RawProblem(el, f"unknown element <{el.tag}>: {SCHEMA_NAME} does not "
                                        "define it; remove it or fix its name"))
            continue
        if parent is not None and parent.tag in table and el.tag not in table[parent.tag].children:
            found.append(RawProblem(el, f"<{el.tag}> is not allowed inside <{parent.tag}>: "
                                        "move or remove it; allowed there: "
                                        f"{_preview(table[parent.tag].children)}"))
            continue  # its attributes are judged by the rule of the right place
        open_attributes = None in rule.attributes  # e.g. <ocf>: any agent parameter
        for key in el.attrib:
            if key not in rule.attributes and not open_attributes:
                found.append(RawProblem(el, _unknown_attribute(el.tag, key)))
        if el.text and el.text.strip() and not rule.text:
            found.append(RawProblem(el, f"<{el.tag}> must not contain text; remove it"))
        if (el.tail and el.tail.strip() and parent is not None and parent.tag in table
                and not table[parent.tag].text):
            found.append(RawProblem(parent, f"<{parent.tag}> must not contain text (found after "
                                            f"<{el.tag}>); remove it"))
    return found


_STEP = re.compile(r"(?:(?P<prefix>[\w.-]+):)?(?P<name>[\w.-]+)(?:\[(?P<n>[0-9]+)\])?")


_UNSEEN = object()


class _Locator:
    """The element at a libxml2 error path (``/cluster/rm/service[3]``) in one tree,
    each parent's children grouped by name once and each path resolved from its
    parent's (an XPath per error would scan the siblings again for every error)."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self._kids: dict[etree._Element, dict[str, list[etree._Element]]] = {}
        self._found: dict[str, etree._Element | None] = {}
        self._steps: dict[str, tuple[str, int] | None] = {}  # a step's tag and index

    def _step(self, step: str) -> tuple[str, int] | None:
        """The tag and the index of a step (None: not one this class resolves); the same
        steps recur in many paths (``action``, ``service[7]``), each is parsed once."""
        try:
            return self._steps[step]
        except KeyError:
            pass
        m = _STEP.fullmatch(step)
        if m is None or m["prefix"] not in (None, WRAP_PREFIX):
            parsed = None
        else:
            tag = m["name"] if m["prefix"] is None else f"{{{WRAP_NS}}}{m['name']}"
            parsed = tag, int(m["n"] or 1)
        self._steps[step] = parsed
        return parsed

    def __call__(self, path: str | None) -> etree._Element | None:
        if not path:
            return None
        found = self._found.get(path, _UNSEEN)
        if found is not _UNSEEN:
            return found
        parent_path, _, step = path.rpartition("/")
        parsed = self._steps.get(step, _UNSEEN)
        if parsed is _UNSEEN:
            parsed = self._step(step)
        if parsed is None or not path.startswith("/"):
            el = _locate(self.root, path)
        else:
            tag, n = parsed
            if not parent_path:
                el = self.root if self.root.tag == tag and n == 1 else None
            else:
                parent = self(parent_path)
                same = ((self._kids.get(parent) or self._children(parent)).get(tag, [])
                        if parent is not None else [])
                el = same[n - 1] if 0 < n <= len(same) else None
        self._found[path] = el
        return el

    def _children(self, parent: etree._Element) -> dict[str, list[etree._Element]]:
        kids = self._kids.get(parent)
        if kids is None:
            kids = self._kids[parent] = {}
            for child in parent:
                kids.setdefault(child.tag, []).append(child)
        return kids


def _locate(root: etree._Element, path: str | None) -> etree._Element | None:
    if not path:
        return None
    try:
        hits = root.getroottree().xpath(path, namespaces={WRAP_PREFIX: WRAP_NS})
    except etree.XPathError:
        return None
    return hits[0] if hits and isinstance(hits[0], etree._Element) else None


def _explain(entry: etree._LogEntry, el: etree._Element | None) -> str:
    msg = entry.message.strip()
    if el is None:
        return f"{msg} (per {SCHEMA_NAME})"
    if entry.type_name == "RELAXNG_ERR_NOELEM":
        return f"{msg}: add the missing element (required by {SCHEMA_NAME})"
    if el.tag in ("fencedevice", "device"):
        return (f"<{el.tag}> does not match {SCHEMA_NAME} (libxml2: {msg}); a <fencedevice> "
                "takes name, agent and its agent's parameters, a node's <device> the name "
                "of a fence device and that agent's parameters")
    if entry.type_name in _GENERIC_TYPES:
        return (f"<{el.tag}> does not match {SCHEMA_NAME} (libxml2: {msg}); check its "
                "attribute values, required attributes and children against the schema")
    return f"{msg} (per {SCHEMA_NAME})"


def _detached(el: etree._Element) -> etree._Element:
    clone = copy.deepcopy(el)
    clone.tail = None
    return clone


def _fence_probe(el: etree._Element) -> etree._Element:
    """A minimal document holding only ``el`` (a fencedevice or device) in its place."""
    root = etree.Element("cluster", name="probe", config_version="1")
    node = etree.SubElement(etree.SubElement(root, "clusternodes"), "clusternode",
                            name="probe", nodeid="1")
    if el.tag == "device":
        method = etree.SubElement(etree.SubElement(node, "fence"), "method", name="probe")
        method.append(_detached(el))
        # the device must name an existing ID so the probe isolates its parameters
        etree.SubElement(etree.SubElement(root, "fencedevices"), "fencedevice",
                         name=el.get("name", "probe"), agent="fence_probe")
    else:
        etree.SubElement(root, "fencedevices").append(_detached(el))
    return root


def _fence_culprits(el: etree._Element) -> list[etree._Element]:
    """Which fence devices/device references below ``el`` break the schema on their own."""
    rng = schema()
    return [d for d in el.iter("fencedevice", "device") if not _validate(rng, _fence_probe(d))[0]]


_FENCE_CONTAINERS = frozenset({"fencedevices", "clusternode", "fence", "method", "unfence"})


EXACT_LIMIT = 4096  # elements up to which the interleave schema words the findings


def _pruner(judged: frozenset[etree._Element]) -> Prune:
    """Leave out of the schema's copy what ``structure_problems`` already refused on the
    ``judged`` elements: unknown and misplaced elements, unknown attributes. Neither
    can fill anything the schema requires, so removing them adds no finding; it only
    spares libxml2 (and the de-duplication after it) one generic message per mistake:
    20,000 unknown attributes cost about 0.5 s more without this."""
    table = rules()

    def prune(copy_root: etree._Element, origin: dict[etree._Element, etree._Element]
              ) -> None:
        for el in [el for el in copy_root.iter(etree.Element) if origin.get(el) in judged]:
            rule = table.get(el.tag)
            parent = el.getparent()
            if rule is None or (parent is not None and parent.tag in table
                                and el.tag not in table[parent.tag].children):
                if parent is not None:
                    parent.remove(el)
            elif None not in rule.attributes:
                for key in [k for k in el.attrib if k not in rule.attributes]:
                    del el.attrib[key]
    return prune


def schema_problems(root: etree._Element,
                    judged: frozenset[etree._Element] = frozenset()) -> list[RawProblem]:
    """RelaxNG findings for ``root`` (an element in its own document), located and worded.

    Linear in the size of the tree: the linear twin (``rnglinear``) says whether it
    matches. A tree that does not and has up to EXACT_LIMIT elements gets the findings
    of the schema itself (its interleaves cost time quadratic in the size of the tree);
    a larger one gets the twin's, located on the elements of ``root``. ``judged``: the
    elements ``structure_problems`` found problems on; what it refused there is left out
    of the twin's copy (``_pruner``), so the twin reports the other mistakes only, at any
    size (the schema itself, after an unknown child of ``<rm>``, only says "Extra element
    rm in interleave" and nothing about the mistakes after it).
    """
    twin = _linear()
    tree, origin = twin.rewrite(root, _pruner(judged) if judged else None)
    ok, log = _validate(twin.schema, tree)
    if ok:
        return []
    if not judged and sum(1 for _ in root.iter(etree.Element)) <= EXACT_LIMIT:
        ok, log = _validate(schema(), root)
        if ok:
            return []
        tree, origin = root, {}
    found: list[RawProblem] = []
    locate = _Locator(tree)
    idref: dict[str, bool] = {}          # per message: the same message recurs per element
    explained: dict[tuple[str, str, str | None], str] = {}  # _explain per message and tag
    for entry in log:
        message, type_name = entry.message, entry.type_name
        skip = idref.get(message)
        if skip is None:
            skip = idref[message] = _IDREF.search(message) is not None
        if skip:
            continue
        path = entry.path
        if type_name == "RELAXNG_ERR_INTEREXTRA" and not path:
            continue  # always followed by a CONTENTVALID entry that carries the path
        el = locate(path)
        el = origin.get(el, el) if el is not None else None
        generic = type_name in _GENERIC_TYPES
        if type_name == "RELAXNG_ERR_NOELEM" and el is not None:
            wanted = re.search(r"Expecting an element (\S+),", message)
            if wanted and el.find(wanted.group(1)) is not None:
                continue  # libxml2 lost its way in an interleave; the cause is elsewhere
        tag = None if el is None else el.tag
        if generic and tag in _FENCE_CONTAINERS:
            culprits = _fence_culprits(el)
            if culprits:
                found.extend(RawProblem(c, _explain(entry, c), False, True) for c in culprits)
                continue
        local = not generic and type_name != "RELAXNG_ERR_NOELEM"
        key = (message, type_name, tag)
        reason = explained.get(key)
        if reason is None:
            reason = explained[key] = _explain(entry, el)
        found.append(RawProblem(el, reason, generic, local))
    return found


def is_under(path: str, ancestor: str) -> bool:
    return path == ancestor or path.startswith(ancestor + "/")
