"""``ccs_config_validate --migration FILE``: plan a move from RHCS in one read.

Reads an RHCS cluster.conf and prints four sections, always in this order: what clusterd
honours (element, how often, the attributes set), what it accepts but does not use (with
what to use instead), the resources to rewrite (types with no agent built into clusterd,
with the OCF agent to use instead), and the problems that make the file invalid for
clusterd as it stands. Items keep document order. Fence device parameters are not checked
against the installed agents (the report is meant for any machine): ccs_config_validate on
a node does that.

Exit status: 0 the file was read (whatever it needs); 2 it cannot be read or is not XML.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from clusterd.conf import validate_bytes
from clusterd.conf.parse import parse_xml, read_bytes
from clusterd.conf.support import Honoured, Survey, survey
from clusterd.errors import ConfigError, Problem

EXIT_OK = 0
EXIT_UNREADABLE = 2


def _grouped(items: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(key, where) pairs -> [(key, [where ...])], keys in order of first occurrence."""
    groups: dict[str, list[str]] = {}
    for key, where in items:
        groups.setdefault(key, []).append(where)
    return list(groups.items())


def _attributes(h: Honoured) -> str:
    text = ", ".join(h.attributes) or "-"
    if h.parameters:
        text += "; agent parameters: " + ", ".join(h.parameters)
    return text


def render_plain(source: str, root_attrs: dict[str, str], found: Survey,
                 problems: tuple[Problem, ...]) -> str:
    name = root_attrs.get("name")
    version = root_attrs.get("config_version")
    out = [f"Migration report for {source}",
           f"cluster {name!r}, config_version {version}" if name else "cluster (unnamed)", ""]
    out.append("1. Honoured: clusterd uses these as RHCS did (element (count): attributes "
               "set)")
    out += [f"  <{h.element}> ({h.count}): {_attributes(h)}" for h in found.honoured] or [
        "  none"]
    out += ["", (f"2. Accepted but not used by clusterd ({len(found.unused)}): remove them, or "
                 "use what is named instead")]
    for instead, places in _grouped([(u.instead, u.where) for u in found.unused]):
        out.append(f"  {instead}:")
        out += [f"    {where}" for where in places]
    if not found.unused:
        out.append("  none")
    out += ["", (f"3. Must be rewritten ({len(found.rewrite)}): resource types with no agent "
                 "built into clusterd")]
    hints = {r.type: r.instead for r in found.rewrite}
    for rtype, places in _grouped([(r.type, r.where) for r in found.rewrite]):
        out.append(f"  <{rtype}> ({len(places)}): {hints[rtype]}")
        out += [f"    {where}" for where in places]
    if not found.rewrite:
        out.append("  none")
    out += ["", f"4. Problems: invalid for clusterd as it stands ({len(problems)})"]
    out += [f"  {p}" for p in problems] or ["  none"]
    todo = [f"{n} {what}" for n, what in ((len(found.unused), "not used"),
                                          (len(found.rewrite), "to rewrite"),
                                          (len(problems), "problem" if len(problems) == 1
                                           else "problems")) if n]
    out += ["", "Result: " + ("clusterd runs this file as it is" if not todo
                              else "needs changes: " + ", ".join(todo))]
    return "\n".join(out) + "\n"


def as_json(source: str, root_attrs: dict[str, str], found: Survey,
            problems: tuple[Problem, ...]) -> dict[str, Any]:
    return {
        "file": source, "cluster": root_attrs.get("name"),
        "config_version": root_attrs.get("config_version"),
        "honoured": [{"element": h.element, "count": h.count, "attributes": list(h.attributes),
                      "agent_parameters": list(h.parameters), "read_by": h.readers}
                     for h in found.honoured],
        "unused": [{"where": u.where, "instead": u.instead} for u in found.unused],
        "rewrite": [{"where": r.where, "type": r.type, "instead": r.instead}
                    for r in found.rewrite],
        "problems": [{"where": p.where, "reason": p.reason} for p in problems],
    }


def main(path: str, fmt: str = "plain") -> int:
    """Print the report of ``path``; the exit status of ``--migration``."""
    try:
        data = read_bytes(path)
        root = parse_xml(data, path)
    except OSError as exc:
        print(f"ccs_config_validate: cannot read {path}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_UNREADABLE
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        print(f"ccs_config_validate: {path} is not a cluster.conf that can be read",
              file=sys.stderr)
        return EXIT_UNREADABLE
    found = survey(root) if root.tag == "cluster" else Survey((), (), ())
    problems = validate_bytes(data, source=path)
    attrs = dict(root.attrib) if root.tag == "cluster" else {}
    if fmt == "json":
        print(json.dumps(as_json(path, attrs, found, problems), indent=2))
    else:
        sys.stdout.write(render_plain(path, attrs, found, problems))
    return EXIT_OK
