"""Service definitions and failover domains from an lxml ``<rm>`` element (pure).

Defaults are service.sh's meta-data (autostart=1, exclusive=0, recovery=restart,
max_restarts=0, restart_expire_time=0, depend_mode=hard); booleans are clusterd.truth's
numeric dialect (1 or 0: rgmanager read these with atoi(), so "yes" meant 0 there; the
validator refuses the same values). Bad values are ConfigError problems naming the element.
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from clusterd.errors import ConfigError, Problem
from clusterd.placement.model import (
    DependMode,
    DomainMember,
    FailoverDomain,
    Recovery,
    ServiceDef,
)
from clusterd.resources.rules import expand_time
from clusterd.truth import parse_bool

# the members by value, looked up once per service (Recovery(value) is an Enum call)
_RECOVERY = {m.value: m for m in Recovery}
_DEPEND_MODE = {m.value: m for m in DependMode}


def _bool(el: etree._Element | Mapping[str, str], attr: str, default: bool, where: str, problems: list[Problem]) -> bool:
    v = el.get(attr)
    if v is None:
        return default
    try:
        return parse_bool(v, attr, numeric=True)
    except ValueError as exc:
        problems.append(Problem(where, str(exc)))
        return default


def _int(el: etree._Element | Mapping[str, str], attr: str, where: str, problems: list[Problem]) -> int:
    v = el.get(attr)
    if v is None:
        return 0
    try:
        n = int(v)
    except ValueError:
        problems.append(Problem(where, f"{attr}={v!r} is not an integer"))
        return 0
    if n < 0:
        problems.append(Problem(where, f"{attr}={v!r} must not be negative"))
    return max(n, 0)


def services_from_rm(rm: etree._Element | None,
                     skip: frozenset[etree._Element] = frozenset()
                     ) -> tuple[tuple[ServiceDef, ...], tuple[FailoverDomain, ...]]:
    """The services and failover domains of ``<rm>``; ConfigError with every problem.
    ``skip``: service/vm elements validation refused already (not modelled; their names
    still satisfy a ``depend=``, so no second finding follows from the first)."""
    if rm is None:
        return (), ()
    problems: list[Problem] = []
    domains: list[FailoverDomain] = []
    for d in rm.iterfind("failoverdomains/failoverdomain"):
        where = f"/cluster/rm/failoverdomains/failoverdomain[@name='{d.get('name')}']"
        members = []
        for m in d.iterfind("failoverdomainnode"):
            members.append(DomainMember(m.get("name", ""), _int(m, "priority", where, problems)))
        domains.append(FailoverDomain(d.get("name", ""), tuple(members),
                                      _bool(d, "ordered", False, where, problems),
                                      _bool(d, "restricted", False, where, problems),
                                      _bool(d, "nofailback", False, where, problems)))
    names = {d.name for d in domains}
    defined: dict[tuple[str, str | None], etree._Element] = {}  # global service/vm by name
    for r in rm.iterfind("resources/*"):
        defined.setdefault((r.tag, r.get("name")), r)   # the first one, as a scan would
    services: list[ServiceDef] = []
    refused: set[str] = set()
    for el in rm:
        if el.tag not in ("service", "vm"):
            continue
        if el in skip:
            refused.add(f"{el.tag}:{el.get('name') or el.get('ref')}")
            continue
        ref = el.get("ref")
        src = el
        if ref is not None:
            src = defined.get((el.tag, ref))
            if src is None:
                continue  # the resource tree reports the dangling ref
        attrs = dict(src.items())              # one read of the element's attributes
        get = attrs.get
        name = f"{el.tag}:{get('name')}"
        where = f"/cluster/rm/{el.tag}[@name='{get('name')}']"
        rec = (get("recovery") or "restart").strip().lower()
        recovery = _RECOVERY.get(rec)
        if recovery is None:
            problems.append(Problem(where, f"recovery={rec!r} is not one of restart, relocate, "
                                           "disable, restart-disable"))
            recovery = Recovery.RESTART
        mode = (get("depend_mode") or "hard").strip().lower()
        if mode not in ("hard", "soft"):
            problems.append(Problem(where, f"depend_mode={mode!r} is not hard or soft"))
            mode = "hard"
        domain = get("domain") or None
        if domain is not None and domain not in names:
            problems.append(Problem(where, f"domain {domain!r} is not a failoverdomain"))
        depend = get("depend") or None
        if depend is not None and ":" not in depend:
            depend = f"service:{depend}"
        services.append(ServiceDef(
            name, domain, _bool(attrs, "autostart", True, where, problems),
            _bool(attrs, "exclusive", False, where, problems), recovery,
            _int(attrs, "max_restarts", where, problems),
            expand_time(get("restart_expire_time")), depend, _DEPEND_MODE[mode]))
    known = {s.name for s in services} | refused
    for s in services:
        if s.depend is not None and s.depend not in known:
            kind, _, bare = s.name.partition(":")
            problems.append(Problem(f"/cluster/rm/{kind}[@name='{bare}']",
                                    f"depend={s.depend!r} names no service"))
    if problems:
        raise ConfigError(problems, source="rm")
    return tuple(services), tuple(domains)
