"""Attribute inheritance through nested resources, golden: each value is what rgmanager's
restree.c ``_attr_value()`` gives (RHCS-3.0.12 and RHCS-late are identical there):

* an attribute the element sets is its own value, never inherited;
* ``inherit="attr"`` asks the parent for ``attr``; ``inherit="type%attr"`` walks up to the
  nearest ancestor of that type (the type cut to 31 characters: ``char p_type[32]``);
* the resource asked answers with its own value, resolves further up if its attribute is
  itself inherited, or answers nothing when it has no such attribute (the search stops).

Plus a property: :func:`resolve` agrees with a line-by-line transliteration of the C
function over random chains of resources.
"""

from __future__ import annotations

import pytest
from clusterd.resources import build_tree, rule_from_metadata
from clusterd.resources.model import Resource, ResourceAttr
from clusterd.resources.nodeattrs import resolve
from clusterd.resources.rules import DEFAULT_RULES, ParamSpec, ResourceRule
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

NFS = ('<service name="s" nfslock="1">'
       '<fs name="f" mountpoint="/m" device="/dev/x" fsid="7">'
       '<nfsexport name="e"><nfsclient name="c" target="*"/>'
       '<nfsclient name="own" target="h" path="/own"/></nfsexport>'
       '<fs name="inner" mountpoint="/m/i" device="/dev/i"/>'
       '<nfsclient name="direct" target="d"/></fs>'
       '<script name="k" file="/k"/><ip address="10.0.0.1"/></service>')
PLAIN = ('<service name="s"><fs name="f" mountpoint="/m" device="/dev/x"/>'
         '<ip address="10.0.0.1"/></service>')
VM = '<vm name="v"><script name="k" file="/k"/></vm>'


def _meta(type_: str, *params: tuple[str, str]) -> ResourceRule:
    """A rule from agent meta-data: params are (name, extra XML attributes)."""
    body = "".join(f'<parameter name="{n}" {extra}/>' for n, extra in params)
    return rule_from_metadata(f'<resource-agent name="{type_}"><parameters>{body}'
                              "</parameters></resource-agent>".encode())


LONG31, LONG32 = "u" * 31, "w" * 32
RULES = DEFAULT_RULES.with_rules([
    _meta("outer", ("name", 'primary="1"'), ("x", "")),
    _meta("relay", ("name", 'primary="1"'), ("x", 'inherit="outer%x"')),
    _meta("leaf", ("name", 'primary="1"'), ("x", 'inherit="outer%x"'),
          ("y", 'inherit="relay%x"'), ("z", 'inherit="x"')),
    _meta(LONG31, ("name", 'primary="1"')),
    _meta(LONG32, ("name", 'primary="1"')),
    _meta("tail", ("name", 'primary="1"'), ("a", f'inherit="{LONG31}%name"'),
          ("b", f'inherit="{LONG32}%name"')),
])
CUSTOM = ('<service name="s">'
          '<outer name="o1" x="1"><outer name="o2"><leaf name="l1"/></outer>'
          '<leaf name="l2"/><relay name="r"><leaf name="l3"/></relay>'
          '<leaf name="l4" x="own"/></outer>'
          f'<{LONG31} name="deep31"><tail name="t1"/></{LONG31}>'
          f'<{LONG32} name="deep32"><tail name="t2"/></{LONG32}></service>')

# (config, path of labels from the top-level group, attribute, rgmanager's value)
GOLDEN = [
    (NFS, ["fs:f"], "nfslock", "1"),                       # inherit="nfslock": the parent
    (NFS, ["fs:f", "fs:inner"], "nfslock", "1"),           # parent's own is inherited: go on
    (NFS, ["fs:f", "nfsexport:e"], "device", "/dev/x"),
    (NFS, ["fs:f", "nfsexport:e"], "path", "/m"),          # inherit="mountpoint"
    (NFS, ["fs:f", "nfsexport:e"], "fsid", "7"),
    (NFS, ["fs:f", "nfsexport:e", "nfsclient:c"], "path", "/m"),   # path -> mountpoint
    (NFS, ["fs:f", "nfsexport:e", "nfsclient:c"], "fsid", "7"),    # fsid -> fsid
    (NFS, ["fs:f", "nfsexport:e", "nfsclient:own"], "path", "/own"),  # set: not inherited
    (NFS, ["fs:f", "nfsclient:direct"], "path", None),     # the parent fs has no "path"
    (NFS, ["fs:f", "nfsclient:direct"], "fsid", "7"),
    (NFS, ["script:k"], "service_name", "s"),              # inherit="service%name"
    (NFS, ["ip:10.0.0.1"], "nfslock", "1"),                # inherit="service%nfslock"
    (PLAIN, ["fs:f"], "nfslock", None),                    # the service does not set it
    (PLAIN, ["ip:10.0.0.1"], "nfslock", None),
    (VM, ["script:k"], "service_name", None),              # no service above a vm's script
    (CUSTOM, ["outer:o1", "outer:o2", "leaf:l1"], "x", None),  # nearest outer lacks x: stop
    (CUSTOM, ["outer:o1", "leaf:l2"], "x", "1"),
    (CUSTOM, ["outer:o1", "leaf:l2"], "z", "1"),           # inherit="x": the parent's x
    (CUSTOM, ["outer:o1", "relay:r", "leaf:l3"], "y", "1"),  # relay's x: outer%x from there
    (CUSTOM, ["outer:o1", "relay:r", "leaf:l3"], "x", "1"),  # walks past the relay
    (CUSTOM, ["outer:o1", "relay:r", "leaf:l3"], "z", "1"),  # the relay's inherited x
    (CUSTOM, ["outer:o1", "leaf:l4"], "x", "own"),
    (CUSTOM, [f"{LONG31}:deep31", "tail:t1"], "a", "deep31"),  # 31 characters: matches
    (CUSTOM, [f"{LONG32}:deep32", "tail:t2"], "b", None),  # 32: cut to 31, never matches
]


def _node(body: str, path: list[str]):
    tree = build_tree(etree.fromstring(f"<rm>{body}</rm>"), RULES)
    node = tree.roots[0]
    for label in path:
        node = next(c for c in node.children if c.label == label)
    return node


@pytest.mark.parametrize(("body", "path", "attr", "value"), GOLDEN,
                         ids=[f"{'/'.join(p)}@{a}" for _, p, a, _ in GOLDEN])
def test_inheritance_resolves_as_restree_c(body, path, attr, value):
    assert _node(body, path).attr(attr) == value


def test_an_unresolved_attribute_stays_listed_as_none():
    """rgmanager passes no OCF_RESKEY_ variable for it (build_env skips a NULL value)."""
    assert ("path", None) in _node(NFS, ["fs:f", "nfsclient:direct"]).attrs


# --- property: resolve() == restree.c _attr_value(), transliterated -----------------------
def _attr_value(chain: tuple[Resource, ...], i: int, attrname: str, ptype: str | None):
    """restree.c ``_attr_value(node, attrname, ptype)``; ``chain[i - 1]`` is rn_parent."""
    if i < 0:                                              # if (!node) return NULL;
        return None
    res = chain[i]
    if ptype is not None and res.type != ptype:            # go up: not the parent type
        return _attr_value(chain, i - 1, attrname, ptype)
    for ra in res.attrs:
        if ra.name != attrname:
            continue
        if not ra.inherited:
            return ra.value
        c = ra.value.find("%")
        if c < 0:                                          # older semantics: the parent
            return _attr_value(chain, i - 1, ra.value, None)
        p_type = ra.value[:min(c, 31)]                     # char p_type[32]
        return _attr_value(chain, i - 1, ra.value[c + 1:], p_type)
    return None


TYPES = ["a", "b", "c", "d" * 31, "e" * 32]
NAMES = ["p", "q", "r"]
SPECS = ["p", "q", "r", "a%p", "b%q", "c%r", "z%p", "%p", "a%b%p", "d" * 31 + "%q",
         "e" * 32 + "%q", "e" * 31 + "%q"]


@st.composite
def chains(draw) -> tuple[Resource, ...]:
    out = []
    for _ in range(draw(st.integers(1, 6))):
        type_ = draw(st.sampled_from(TYPES))
        attrs = []
        for name in NAMES:
            kind = draw(st.sampled_from(["absent", "own", "inherit"]))
            if kind == "own":
                attrs.append(ResourceAttr(ParamSpec(name), draw(st.sampled_from(["1", "2", ""]))))
            elif kind == "inherit":
                attrs.append(ResourceAttr(ParamSpec(name), draw(st.sampled_from(SPECS)), True))
        out.append(Resource(ResourceRule(type_, tuple(ParamSpec(n) for n in NAMES)),
                            tuple(attrs), True, ""))
    return tuple(out)


@settings(max_examples=300, deadline=None)
@given(chains(), st.sampled_from(NAMES))
def test_resolve_is_restree_attr_value(chain, name):
    assert resolve(chain, name) == _attr_value(chain, len(chain) - 1, name, None)
