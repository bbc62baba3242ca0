"""clusterd's own settings in cluster.conf: the ``<clusterd>`` element.

::

    <cluster name="alpha" config_version="4">
      <clusterd admin_group="hacluster-admin"/>
      ...

``admin_group``: members of this group (primary or supplementary, as the kernel reports
them for the connecting process) hold the control socket's ``admin`` role: every change
(conf.propose, reload, leave, svc.*, node.standby/active, fence.node/ack/verify,
key.reload/activate). Without it only root changes anything. The setting is cluster-wide
like the rest of the file; each node resolves the name with its own user database, so the
group must exist, with the same members, on every node where it should count.

``<alert name= program= recipient= timeout= events=>`` children: programs run on cluster
events (``clusterd.alerts``). ``name`` unique, ``program`` a program parameter
(``clusterd.trust``), ``timeout`` 1..3600 seconds, ``events`` words among node, quorum,
fence, service.

RHCS's cluster.rng has no place for a daemon it did not have; as for ``<systemd>`` and
``<ocf>`` (``resources/agents/rng.py``) the schema is extended: an optional ``<clusterd>``
joins the ``<cluster>`` interleave, so ``ccs_config_validate --print-schema`` gives a
schema xmllint accepts the file with. The group name is checked here: POSIX portable
user-name characters (letters, digits, ``.``, ``_``, ``-``) plus ``@`` for directory
(sssd) names, starting with a letter or ``_``, at most 64 characters. Whether the group
exists is not checked (a controller need not have it); a node without it gives the admin
role to root only and says so in every refusal. Pure (lxml only).
"""

from __future__ import annotations

import re

from lxml import etree

from clusterd.conf.rng import RNG_NS, RawProblem

ELEMENT = "clusterd"
GROUP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.@-]{0,63}$")
ALERT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
ALERT_KINDS = ("node", "quorum", "fence", "service")   # clusterd.alerts.KINDS


def _rng(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{RNG_NS}{tag}", attrs)


def extend_schema(rng: etree._Element) -> etree._Element:
    """``rng`` (a cluster.rng root, changed in place and returned) with an optional
    ``<clusterd admin_group=...>`` among the children of ``<cluster>``. Raises ValueError
    if the schema has no ``<cluster>`` element with an interleave."""
    cluster = rng.find(f"{RNG_NS}start/{RNG_NS}element[@name='cluster']")
    interleave = cluster.find(f"{RNG_NS}interleave") if cluster is not None else None
    if interleave is None:
        raise ValueError("schema has no <element name='cluster'> with an <interleave>")
    if interleave.find(f"{RNG_NS}optional/{RNG_NS}element[@name='{ELEMENT}']") is None:
        element = _rng(_rng(interleave, "optional"), "element", name=ELEMENT)
        _rng(_rng(element, "optional"), "attribute", name="admin_group")
        alert = _rng(_rng(element, "zeroOrMore"), "element", name="alert")
        _rng(alert, "attribute", name="name")
        _rng(alert, "attribute", name="program")
        for optional in ("recipient", "timeout", "events"):
            _rng(_rng(alert, "optional"), "attribute", name=optional)
    return rng


def clusterd_problems(root: etree._Element) -> list[RawProblem]:
    """Semantic rules of ``<clusterd>``: at most one, a valid group name."""
    found: list[RawProblem] = []
    elements = root.findall(ELEMENT)
    for extra in elements[1:]:
        found.append(RawProblem(extra, f"<{ELEMENT}> is given {len(elements)} times: keep "
                                       "one and merge the settings into it"))
    for el in elements:
        group = el.get("admin_group")
        if group is not None and not GROUP_NAME.match(group):
            found.append(RawProblem(el, f"admin_group=\"{group}\" is not a group name: use "
                                        "1-64 letters, digits, '_', '.', '-' or '@', starting "
                                        "with a letter or '_' (a name, not a gid); or remove "
                                        "admin_group to leave changes to root"))
    names: set[str] = set()
    for alert in root.iterfind(f"{ELEMENT}/alert"):
        name = alert.get("name", "")
        if not ALERT_NAME.match(name):
            found.append(RawProblem(alert, f"alert name {name!r}: use 1-64 letters, digits, "
                                           "'_', '.' or '-'"))
        elif name in names:
            found.append(RawProblem(alert, f"alert {name!r} is defined twice: rename one"))
        names.add(name)
        timeout = (alert.get("timeout") or "30").strip()
        if not timeout.isdigit() or not 1 <= int(timeout) <= 3600:
            found.append(RawProblem(alert, f"timeout=\"{timeout}\" is not 1..3600 seconds: "
                                           "give the program's time limit in whole seconds"))
        words = (alert.get("events") or "node quorum fence service").split()
        unknown = [w for w in words if w not in ALERT_KINDS]
        if unknown or not words:
            found.append(RawProblem(alert, f"events=\"{alert.get('events')}\": "
                                           f"{'unknown ' + ', '.join(unknown) if unknown else 'empty'}"
                                           f"; list some of {', '.join(ALERT_KINDS)} "
                                           "(space-separated), or leave events out for all"))
    return found
