"""ccs_config_validate: check a cluster.conf the way RHCS's tool of that name did.

    ccs_config_validate [-f FILE] [-q] [--format plain|json]
    ccs_config_validate --print-schema
    ccs_config_validate --migration FILE [--format plain|json]


Exit status: 0 the configuration validates; 1 it does not (every problem is printed, one
per line, on stderr, then "Configuration fails to validate"); 2 usage error or the file
cannot be read. ``-q`` prints nothing and only sets the exit status. Secret parameter
values never appear in the output. Program parameters (``passwd_script``, ``<script file>``
...) that name a file on this machine are also checked the way clusterd checks them before
running them (root-owned, not writable by group or others, nor its directories); one that
does not exist here is not a problem (docs/security.md, "Agents and scripts"). Node names
are resolved here as clusterd resolves them, and two nodes at one address are refused (a
name that does not resolve here is not a problem; conf/refusals.py).

Fence device parameters are checked against each fence agent's own ``-o metadata`` (as
RHCS's ``ccs_update_schema`` regenerated cluster.rng from the installed agents): a
parameter the agent does not declare, a value its declared type refuses, and an agent that
is not installed here or does not answer are problems. The metadata is cached per agent
file in /var/lib/clusterd/fence-metadata.json where that directory exists.
``--skip-fence-agents`` leaves that check out, for a machine that is not a cluster node (a
controller): clusterd still makes it on the node where the file is proposed.

Parts of the file that clusterd accepts but does not use (RHCS's quorum disk, logging,
totem options other than ``token`` ...) are printed as warnings on stderr, "FILE: warning:
accepted but not used by clusterd: XPATH (what to use instead)" (``unused`` in JSON); they
do not change the exit status. ``--migration FILE`` prints a migration plan for an RHCS
cluster.conf instead (``cli/migration.py``; docs/rhcs-migration.md).

What rgmanager accepted with a warning is accepted the same way and printed the same way
("FILE: warning: XPATH: why and what to do"; ``warnings`` in JSON): a resource referenced
more often than its type's ``maxinstances`` (an ``ip`` used by two services) stays with
its first reference, and the extra reference is left out of the resource tree. More
nodes or services than clusterd is tested with (``conf/limits.py``: 300 nodes, 1,000
services) are accepted with a warning of that form that names the tested limit.

``--print-schema`` prints the RelaxNG schema the structure is checked with: RHCS's
cluster.rng with ``systemd`` and ``ocf`` added where resources may appear, as RHCS's
``ccs_update_schema`` wrote /var/lib/cluster/cluster.rng, and fence device parameters open
(the agents' metadata judges them). An independent reader (``xmllint --relaxng``) can check
a cluster.conf with it.
"""

from __future__ import annotations

import argparse
import json
import sys

from lxml import etree

from clusterd.cli import migration
from clusterd.conf import DEFAULT_PATH, validate_bytes
from clusterd.conf import rng as conf_rng
from clusterd.conf.fenceparams import FenceAgents
from clusterd.conf.parse import parse_xml, read_bytes, warnings_of
from clusterd.conf.paths import element_path
from clusterd.conf.programs import local_problems
from clusterd.conf.refusals import Resolver, address_problems, system_resolver
from clusterd.conf.rng import RawProblem
from clusterd.conf.support import Unused, unused_report
from clusterd.conf.validate import scale_warnings
from clusterd.errors import ConfigError, Problem

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ccs_config_validate",
        description="Validate cluster.conf against the RHCS schema and clusterd's rules.")
    parser.add_argument("-f", "--file", default=DEFAULT_PATH,
                        help=f"the cluster.conf to check (default {DEFAULT_PATH})")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print nothing; only the exit status tells")
    parser.add_argument("--format", choices=("plain", "json"), default="plain")
    parser.add_argument("--print-schema", action="store_true",
                        help="print the RelaxNG schema used (cluster.rng plus systemd and ocf)")
    parser.add_argument("--migration", metavar="FILE",
                        help="report how an RHCS cluster.conf maps onto clusterd: what is "
                             "honoured, accepted but not used, to rewrite, and invalid "
                             "(exit 0 once FILE is read)")
    parser.add_argument("--skip-fence-agents", action="store_true",
                        help="do not run the fence agents for their metadata, and so leave "
                             "fence device parameters unchecked (on a machine that is not a "
                             "cluster node)")
    return parser.parse_args(argv)


def _unused(data: bytes, source: str) -> list[Unused]:
    """What the file sets that clusterd accepts but does not use (conf/support.py)."""
    try:
        return unused_report(parse_xml(data, source))
    except ConfigError:
        return []


def _warnings(data: bytes, source: str) -> tuple[Problem, ...]:
    """What rgmanager accepted with a warning and clusterd accepts the same way (a
    resource referenced past its type's maxinstances: the extra reference is ignored),
    and more nodes or services than clusterd is tested with (``conf/limits.py``)."""
    try:
        root = parse_xml(data, source)
    except ConfigError:
        return ()
    return (*warnings_of(root), *scale_warnings(root))


def _fence_agents() -> FenceAgents:
    from clusterd.fencing.catalog import MetadataCatalog  # asyncio: only when needed
    return MetadataCatalog()


def _on_this_node(root: etree._Element, resolve: Resolver | None) -> list[RawProblem]:
    """Program files on this machine, and node names resolving to one address here."""
    return [*local_problems(root), *address_problems(root, resolve or system_resolver())]


def main(argv: list[str] | None = None, fence_agents: FenceAgents | None = None,
         resolve: Resolver | None = None) -> int:
    """Run the tool; ``fence_agents`` and ``resolve`` (tests) replace this machine's agents
    and name resolution."""
    args = _args(argv)
    if args.print_schema:
        sys.stdout.write(conf_rng.schema_text())
        return EXIT_OK
    if args.migration is not None:
        return migration.main(args.migration, args.format)
    try:
        data = read_bytes(args.file)
    except OSError as exc:
        if not args.quiet:
            print(f"ccs_config_validate: cannot read {args.file}: {exc.strerror or exc}",
                  file=sys.stderr)
        return EXIT_USAGE
    agents = None if args.skip_fence_agents else fence_agents or _fence_agents()
    problems = validate_bytes(data, source=args.file, fence_agents=agents) or tuple(
        Problem(element_path(raw.element), raw.reason)
        for raw in _on_this_node(parse_xml(data, args.file), resolve))
    if args.quiet:
        return EXIT_INVALID if problems else EXIT_OK
    # Accepted but not used by clusterd: warnings only, the exit status stays as it is.
    unused = _unused(data, args.file)
    warnings = _warnings(data, args.file)   # accepted as rgmanager did, with its warning
    if args.format == "plain":
        for item in unused:
            print(f"{args.file}: warning: {item}", file=sys.stderr)
        for warning in warnings:
            print(f"{args.file}: warning: {warning}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps({"file": args.file, "valid": not problems,
                          "problems": [{"where": p.where, "reason": p.reason}
                                       for p in problems],
                          "unused": [{"where": u.where, "instead": u.instead}
                                     for u in unused],
                          "warnings": [{"where": w.where, "reason": w.reason}
                                       for w in warnings]}, indent=2))
    elif problems:
        for problem in problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        print("Configuration fails to validate", file=sys.stderr)
    else:
        print("Configuration validates")
    return EXIT_INVALID if problems else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
