"""rg_test: rgmanager's resource tree tester (dry run; it never runs an agent).

    rg_test test  CONF                          dump the resource list and tree
    rg_test noop  CONF start|stop|status TYPE NAME
                                                print the plan ([start] type:name ...)
    rg_test delta OLD NEW                       resource list / tree deltas
    rg_test rules                               the resource types known

Output formats are rgmanager's (``rgmanager/src/daemons/test.c``). ``test CONF OP TYPE
NAME`` behaves like ``noop``: this tool never executes agents. A complete cluster.conf
is loaded through clusterd.conf; rgmanager's partial test configs (``<cluster><rm>``
only) are read with lxml alone and only their ``<rm>`` is tested (a note on stderr).
What rgmanager built with a warning is built the same way, and its line comes first on
stdout as rgmanager printed it while building the tree (``restree.c``: "Warning: Max
references exceeded for resource address (type ip)": rgmanager names the primary
*attribute*, not its value); stderr says which element was left out and why.
Exit codes: 0 ok, 1 usage, 2 bad config, 3 no such resource.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree

from clusterd.errors import ConfigError, Problem
from clusterd.resources import (
    DEFAULT_RULES,
    Op,
    format_delta,
    format_test,
    plan,
)
from clusterd.resources.tree import ResourceTree, check_tree

if TYPE_CHECKING:
    from clusterd.conf.rmcheck import TreeWarning

USAGE = """usage: rg_test <args..>

\ttest <configfile> [args..]
\t\tstart <type> <resource>
\t\tstatus <type> <resource>
\t\tstop <type> <resource>

\tnoop <configfile> [args..]   (same as test; rg_test here never runs agents)

\tdelta <configfile1> <configfile2>

\trules
"""

_VERBS = {"start": ("Starting", "Start", "complete"), "stop": ("Stopping", "Stop", "complete"),
          "status": ("Checking status of", "Status", "is good")}


def load_tree(path: str) -> tuple[ResourceTree, str, str]:
    """Parse CONF and build its tree: (tree, stdout lines, stderr lines). A complete
    cluster.conf goes through clusterd.conf (schema, semantic and tree validation);
    rgmanager's test configs are partial, so a file clusterd.conf refuses is read with
    lxml alone (no DTD, no entities, no network) and only its <rm> is tested, as RHCS's
    rg_test did; the note says so on stderr. Warnings: rgmanager's line on stdout, the
    element and what to do on stderr."""
    from clusterd.conf import load

    try:
        conf = load(path)
    except OSError as exc:
        raise ConfigError([Problem(path, f"cannot read: {exc.strerror}")], source=path) from exc
    except ConfigError as exc:
        refused = len(exc.problems)
    else:   # the model: its tree and warnings were built while it was validated
        return conf.resource_tree, *_warned(conf.tree_warnings, "")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True,
                             load_dtd=False)
    try:
        root = etree.fromstring(Path(path).read_bytes(), parser)
    except etree.XMLSyntaxError as exc:
        raise ConfigError([Problem(path, f"not well-formed XML: {exc}")], source=path) from exc
    if root.tag != "cluster":
        raise ConfigError([Problem(path, f"root element is <{root.tag}>, expected <cluster>")],
                          source=path)
    note = (f"note: {path} is not a complete, valid cluster.conf ({refused} problem(s); see "
            f"ccs_config_validate); testing its <rm> section only\n")
    return _built(root.find("rm"), note)


def _built(rm: etree._Element | None, note: str) -> tuple[ResourceTree, str, str]:
    """A partial config's ``<rm>`` (no ClusterConf holds it): built from the XML."""
    from clusterd.conf.rmcheck import TreeWarning

    checked = check_tree(rm)
    if checked.problems:
        raise ConfigError([p.problem() for p in checked.problems], source="rm")
    warnings = [TreeWarning(w.where, w.reason, w.rgmanager) for w in checked.warnings]
    return checked.tree, *_warned(warnings, note)


def _warned(warnings: Sequence[TreeWarning], note: str) -> tuple[str, str]:
    """rgmanager's line for each warning (stdout); the note, then where and why (stderr)."""
    return ("".join(f"{w.rgmanager}\n" for w in warnings),
            note + "".join(f"Warning: {w}\n" for w in warnings))


def noop(tree: ResourceTree, verb: str, type_: str, name: str) -> tuple[int, str]:
    res = tree.find_resource(type_, name)
    if res is None:
        return 3, f"No resource {name} of type {type_} found\n"
    ing, noun, done = _VERBS[verb]
    out = [f"{ing} {name}...\n"]
    for node in tree.nodes_of(res):  # rgmanager res_start(): every occurrence in the tree
        out += [f"{step}\n" for step in plan(node, Op(verb))]
    out.append(f"{noun} of {name} {done}\n")
    return 0, "".join(out)


def run(argv: list[str]) -> tuple[int, str, str]:
    """Returns (exit code, stdout, stderr): the CLI without I/O, for tests."""
    if not argv:
        return 1, USAGE, ""
    cmd, args = argv[0], argv[1:]
    try:
        if cmd in ("test", "noop") and len(args) == 1:
            tree, built, note = load_tree(args[0])
            return 0, built + format_test(tree), note
        if cmd in ("test", "noop") and len(args) == 4 and args[1] in _VERBS:
            tree, built, note = load_tree(args[0])
            rc, out = noop(tree, args[1], args[2], args[3])
            return rc, built + out, note
        if cmd == "delta" and len(args) == 2:
            (old, b1, n1), (new, b2, n2) = load_tree(args[0]), load_tree(args[1])
            return 0, b1 + b2 + format_delta(old, new), n1 + n2
        if cmd == "rules" and not args:
            lines = [f"{r.type}: agent {r.agent_name}; children "
                     + (", ".join(f"{c.type}{' (forbidden)' if c.forbid else ''}"
                                  f"{f' start={c.start} stop={c.stop}' if c.leveled else ''}"
                                  for c in r.children) or "any")
                     + (f"; maxinstances={r.maxinstances}" if r.maxinstances else "")
                     for r in DEFAULT_RULES.values()]
            return 0, "\n".join(lines) + "\n", ""
    except ConfigError as exc:
        return 2, "", "".join(f"Error: {p}\n" for p in exc.problems)
    return 1, USAGE, ""


def main(argv: list[str] | None = None) -> int:
    rc, out, err = run(sys.argv[1:] if argv is None else argv)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


if __name__ == "__main__":
    sys.exit(main())
