"""RelaxNG definitions for our extension resource types (``systemd``, ``ocf``) and
rgmanager's ``nfsserver``.

RHCS 3.0.12's ``cluster.rng`` is closed: its ``CHILD`` choice lists the rgmanager agents
and nothing else, so ``<systemd>`` and ``<ocf>`` do not validate against it. RHCS-late
solved the same problem for locally installed agents with ``ccs_update_schema``: it
regenerated the resource part of the schema from each agent's meta-data (``ra2rng.xsl``).
We do the same for our two types: ``defines()`` renders their ``<define>`` elements in the
shape ``ra2rng.xsl`` produced (``ref=`` or the parameters, rgmanager's ``__*`` attributes,
nested ``CHILDREN``), and ``extend_schema()`` splices them into a cluster.rng document.
``<ocf>`` takes ``name`` and ``agent`` plus any other attribute (the agent's own
parameters, checked against its meta-data by ``registry.validate_with_metadata``).
``<nfsserver>`` (rgmanager's ``nfsserver.sh``, run as heartbeat:nfsserver: ``rhcs_nfs``)
came after 3.0.12's hand-pasted resource list, so only ``ccs_update_schema`` schemas had
it; its define is made from its resource rule as ``ra2rng.xsl`` made one from meta-data
(primary or required parameters mandatory, the others optional).
Pure (lxml only).
"""

from __future__ import annotations

from lxml import etree

from clusterd.resources.agents.metadata import AgentMeta
from clusterd.resources.agents.systemd import META as SYSTEMD_META
from clusterd.resources.rules import DEFAULT_RULES, ResourceRule

RNG = "http://relaxng.org/ns/structure/1.0"
SPECIAL_ATTRS = ("__independent_subtree", "__enforce_timeouts", "__max_failures",
                 "__failure_expire_time")
OCF_FIXED = ("name", "agent")


def _e(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{RNG}}}{tag}", attrs)


def _resource_define(name: str, element: str) -> tuple[etree._Element, etree._Element]:
    """A ``<define>`` with its element, the ``ref=`` branch, and the parameter group."""
    define = etree.Element(f"{{{RNG}}}define", {"name": name}, nsmap={None: RNG})
    elem = _e(define, "element", name=element)
    choice = _e(elem, "choice")
    _e(_e(choice, "group"), "attribute", name="ref")
    return define, _e(choice, "group")


def _close(define: etree._Element) -> etree._Element:
    elem = define[0]
    for special in SPECIAL_ATTRS:
        _e(_e(elem, "optional"), "attribute", name=special)
    _e(_e(elem, "optional"), "ref", name="CHILDREN")
    return define


def meta_define(name: str, meta: AgentMeta) -> etree._Element:
    """The define for a type with fixed parameters (required ones mandatory)."""
    define, group = _resource_define(name, meta.name)
    for param in meta.params:
        target = group if param.required else _e(group, "optional")
        _e(target, "attribute", name=param.name)
    return _close(define)


def ocf_define() -> etree._Element:
    define, group = _resource_define("OCF", "ocf")
    for fixed in OCF_FIXED:
        _e(group, "attribute", name=fixed)
    any_name = _e(_e(_e(group, "zeroOrMore"), "attribute"), "anyName")
    excluded = _e(any_name, "except")
    for taken in ("ref", *OCF_FIXED, *SPECIAL_ATTRS):
        _e(excluded, "name").text = taken
    return _close(define)


def rule_define(name: str, rule: ResourceRule) -> etree._Element:
    """The define ``ra2rng.xsl`` made for an rgmanager agent (see the module docstring)."""
    define, group = _resource_define(name, rule.type)
    for param in rule.params:
        target = group if param.primary or param.required else _e(group, "optional")
        _e(target, "attribute", name=param.name)
    return _close(define)


def defines() -> list[etree._Element]:
    return [meta_define("SYSTEMD", SYSTEMD_META), ocf_define(),
            rule_define("NFSSERVER", DEFAULT_RULES["nfsserver"])]


def extend_schema(rng: etree._Element) -> etree._Element:
    """A copy of a cluster.rng root with SYSTEMD, OCF and NFSSERVER defined and allowed
    wherever a resource may appear (the ``CHILD`` choice). Raises ValueError if there is no CHILD."""
    root = etree.fromstring(etree.tostring(rng))
    child = root.find(f".//{{{RNG}}}define[@name='CHILD']")
    choice = child.find(f".//{{{RNG}}}choice") if child is not None else None
    if choice is None:
        raise ValueError("schema has no <define name='CHILD'> with a <choice> of resources")
    for define in defines():
        name = define.get("name")
        if root.find(f"{{{RNG}}}define[@name='{name}']") is not None:
            continue
        child.addprevious(define)
        _e(choice, "ref", name=name)
    return root
