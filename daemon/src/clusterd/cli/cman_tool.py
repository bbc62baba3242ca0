"""cman_tool: cman's ``status``, ``nodes``, ``version`` and ``expected`` over clusterd.

A thin client of the control socket: ``status``, ``nodes`` and ``version`` render the
status document (op ``status``, the one clustat renders) with the printf formats of
cman's ``cman_tool/main.c`` (cluster 3.x), so scripts that read ``Expected votes:``,
``Quorum:`` or the ``Node  Sts   Inc   Joined               Name`` table keep working::

    Version: 0.1.0
    Config Version: 3
    Cluster Name: alpha
    ...
    Quorum: 2  
    Node name: node1

What cman printed and clusterd has no equivalent for is left out, never invented:
``Active subsystems``, ``Ports Bound`` and ``Multicast addresses`` (clusterd speaks
unicast UDP; ``Node addresses`` is this node's). ``Version`` is clusterd's; ``Inc`` in
``nodes`` is the view epoch in which the node last joined this node's view (cman: the
ring sequence of its join), ``Joined`` when that was. Expected votes set by hand are
shown on one more line after cman's (``Expected votes override: ...``).

``expected -e N`` (op ``quorum.expected``, admin) sets the expected votes of this node
and of every other member of its view and recomputes the quorum, which may go down:
the way to restore quorum by hand after a disaster (docs/operator-guide.md, "Restoring
quorum by hand"). It lasts until the next config change or restart of clusterd.

The subcommands cman had and clusterd does differently (join, leave, kill, votes, wait,
services, debug) are refused with a pointer to what to run instead.

Exit status as the other tools: 0 ok (``status`` of an inquorate node too, as cman),
1 failure, 2 usage (and N < 1), 3 clusterd not running, 4 permission denied, 5 refused
by the daemon (not in a view, or a value the members cannot be quorate with).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from clusterd import __version__
from clusterd.control import protocol as p
from clusterd.control.client import EXIT_FAILURE, EXIT_USAGE, exit_code_for
from clusterd.errors import ControlError

Doc = Mapping[str, Any]
NO_JOIN = " " * 19      # cman's blank "Joined" column
INSTEAD = {
    "join": "start clusterd (systemctl start clusterd): it joins by itself",
    "leave": "run 'clusterd leave' (or systemctl stop clusterd)",
    "kill": "run 'fence_node NODE'",
    "votes": "change the node's votes in cluster.conf (config_version + 1)",
    "wait": "poll 'clustat -Q' (0 when quorate)",
    "services": "run 'clustat'",
    "debug": "run clusterd with --log-level debug",
}
FORMATS = ("id", "name", "type", "votes", "state", "addr")   # nodes -F (cman's "exp" has
                                                             # no per-node source here)


def _localtime(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _nodes(doc: Doc) -> list[Mapping[str, Any]]:
    """Every configured node, and an unconfigured one while it is a member (as clustat)."""
    return sorted((n for n in doc.get("nodes", ())
                   if not (n.get("estranged") and n.get("state") != "online")),
                  key=lambda n: n.get("nodeid", 0))


def _local(doc: Doc) -> Mapping[str, Any]:
    return next((n for n in doc.get("nodes", ()) if n.get("local")), {})


def _membership_state(doc: Doc) -> str:
    state = doc.get("local", {}).get("state")
    if state == "leaving":
        return "Leaving"
    if state == "starting":
        return "Joining"
    return "Cluster-Member" if _local(doc).get("state") == "online" else "Not-in-Cluster"


def status_fields(doc: Doc) -> dict[str, Any]:
    """What ``cman_tool status`` shows, read from the status document."""
    q, local = doc.get("quorum", {}), _local(doc)
    members = [n for n in _nodes(doc) if n.get("state") == "online"]
    qdisk = doc.get("qdisk")
    return {
        "version": doc.get("local", {}).get("version") or "",
        "config_version": doc["cluster"].get("config_version", 0),
        "cluster_name": doc["cluster"]["name"], "cluster_id": doc["cluster"].get("id", 0),
        "cluster_member": local.get("state") == "online",
        "generation": doc["cluster"].get("generation", 0),
        "membership_state": _membership_state(doc), "nodes": len(members),
        "expected_votes": q.get("expected_votes", 0),
        "total_votes": sum(n.get("votes", 1) for n in members) + (
            qdisk.get("votes", 0) if qdisk and qdisk.get("granted") else 0),
        "qdisk_votes": qdisk.get("votes", 0) if qdisk else None,
        "node_votes": local.get("votes", 0), "quorum": q.get("quorum", 0),
        "quorate": bool(q.get("quorate")), "two_node": bool(q.get("two_node")),
        "node_name": doc.get("local", {}).get("name", local.get("name", "")),
        "node_id": doc.get("local", {}).get("nodeid", 0),
        "node_addresses": [local["address"]] if local.get("address") else [],
        "expected_override": q.get("override"),
    }


def _override_line(o: Mapping[str, Any]) -> str:
    line = (f"Expected votes override: {o.get('expected_votes')} (cluster.conf: "
            f"{o.get('configured')}), set by {o.get('origin', '?')}, until the next config "
            "change")
    if o.get("unconfirmed"):
        line += f"; not confirmed yet by {', '.join(o['unconfirmed'])}"
    return line + "\n"


def render_status(doc: Doc) -> str:
    """``cman_tool status`` (show_status() of cman 3's main.c, its printf formats)."""
    f = status_fields(doc)
    out = []
    if f["version"]:
        out.append(f"Version: {f['version']}\n")
    out += [f"Config Version: {f['config_version']}\n",
            f"Cluster Name: {f['cluster_name']}\n",
            f"Cluster Id: {f['cluster_id']}\n",
            f"Cluster Member: {'Yes' if f['cluster_member'] else 'No'}\n",
            f"Cluster Generation: {f['generation']}\n",
            f"Membership state: {f['membership_state']}\n",
            f"Nodes: {f['nodes']}\n",
            f"Expected votes: {f['expected_votes']}\n",
            *([f"Quorum device votes: {f['qdisk_votes']}\n"] if f["qdisk_votes"] is not None
              else []),
            f"Total votes: {f['total_votes']}\n",
            f"Node votes: {f['node_votes']}\n",
            f"Quorum: {f['quorum']} {' ' if f['quorate'] else 'Activity blocked'}\n",
            "Flags:" + (" 2node" if f["two_node"] else "") + " \n",
            f"Node name: {f['node_name']}\n",
            f"Node ID: {f['node_id']}\n"]
    if f["node_addresses"]:
        out.append("Node addresses: " + "".join(f"{a} " for a in f["node_addresses"]) + "\n")
    if f["expected_override"]:
        out.append(_override_line(f["expected_override"]))
    return "".join(out)


def _sts(node: Mapping[str, Any]) -> str:
    return "M" if node.get("state") == "online" else "X"


def node_rows(doc: Doc, names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The rows of ``cman_tool nodes`` (``names``: only these, as ``-n``)."""
    return [{"id": n.get("nodeid", 0), "name": n["name"], "sts": _sts(n),
             "inc": n.get("joined_view") or 0,
             "joined": n.get("joined") if _sts(n) == "M" else None,
             "votes": n.get("votes", 1), "address": n.get("address") or ""}
            for n in _nodes(doc) if not names or n["name"] in names]


def _formatted(row: Mapping[str, Any], fields: Sequence[str]) -> str:
    values = {"id": str(row["id"]), "name": row["name"], "type": row["sts"],
              "votes": str(row["votes"]),
              "state": "Member" if row["sts"] == "M" else "Dead", "addr": row["address"]}
    return "".join(f"{values[f]} " for f in fields if f in values) + "\n"


def render_nodes(doc: Doc, *, names: Sequence[str] = (), addresses: bool = False,
                 fields: Sequence[str] | None = None,
                 localtime: Callable[[float], str] = _localtime) -> str:
    """``cman_tool nodes`` (show_nodes()/print_node() of cman 3's main.c): the table, or
    with ``fields`` (``-F id,name,...``) only those values, space-terminated."""
    rows = node_rows(doc, names)
    if fields is not None:
        return "".join(_formatted(r, fields) for r in rows)
    out = ["Node  Sts   Inc   Joined               Name\n"]
    for r in rows:
        joined = localtime(r["joined"]) if r["joined"] else NO_JOIN
        out.append(f"{r['id']:4d}   {r['sts']}  {r['inc']:5d}   {joined}  {r['name']}\n")
        if addresses and r["address"]:
            out.append(f"       Addresses: {r['address']} \n")
    return "".join(out)


def render_expected(reply: Mapping[str, Any]) -> str:
    """What ``expected -e N`` did (cman printed nothing; one summary is kinder)."""
    state = "quorate" if reply.get("quorate") else "NOT quorate yet"
    text = (f"Expected votes: {reply.get('expected_votes')} (was {reply.get('previous')}, "
            f"cluster.conf {reply.get('configured')}); quorum {reply.get('quorum')}: this "
            f"node is {state}\n")
    if reply.get("sent_to"):
        text += f"Sent to the other members: {', '.join(reply['sent_to'])}\n"
    return text


EXPECTED_WARNING = ("cman_tool: WARNING: a group of nodes that is not a majority of the "
                    "cluster's votes can now be quorate: the nodes outside this view must be "
                    "down for good. This lasts until the next config change or restart of "
                    "clusterd.\n")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--format", choices=("plain", "json"), default=argparse.SUPPRESS)
    common.add_argument("--control-socket", metavar="PATH", default=argparse.SUPPRESS,
                        help="control socket path")
    ap = argparse.ArgumentParser(prog="cman_tool", parents=[common],
                                 description="cman's status, nodes, version and expected "
                                             "subcommands, served by clusterd.")
    ap.add_argument("-V", dest="show_version", action="store_true",
                    help="print the version, then exit")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("status", parents=[common], help="show the local record of cluster status")
    nodes = sub.add_parser("nodes", parents=[common],
                           help="show the local record of cluster nodes")
    nodes.add_argument("-a", dest="addresses", action="store_true",
                       help="also show the node addresses")
    nodes.add_argument("-n", dest="names", action="append", default=[], metavar="NODENAME",
                       help="only this node (repeatable)")
    nodes.add_argument("-F", dest="fields", metavar="FORMAT",
                       help=f"comma-separated fields: {','.join(FORMATS)}")
    sub.add_parser("version", parents=[common], help="clusterd version and config version")
    exp = sub.add_parser("expected", parents=[common],
                         help="set expected votes by hand (restores quorum after a disaster)")
    exp.add_argument("-e", dest="expected", type=int, required=True, metavar="VOTES",
                     help="the new expected votes")
    for name in INSTEAD:
        sub.add_parser(name, add_help=False)
    return ap


def main(argv: Sequence[str] | None = None, *, client: Any = None, out: TextIO | None = None,
         err: TextIO | None = None, localtime: Callable[[float], str] = _localtime) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    ap = _parser()
    args, extra = ap.parse_known_args(argv)
    if args.show_version:
        out.write(f"cman_tool (clusterd) {__version__}\n")
        return 0
    if args.command in INSTEAD:
        err.write(f"cman_tool: '{args.command}' is not a clusterd command: "
                  f"{INSTEAD[args.command]}\n")
        return EXIT_USAGE
    if args.command is None or extra:
        ap.print_usage(err)
        err.write("cman_tool: error: " + (f"unrecognized arguments: {' '.join(extra)}"
                                          if extra else "a command is required") + "\n")
        return EXIT_USAGE
    fmt = getattr(args, "format", "plain")
    fields = None
    if args.command == "nodes" and args.fields is not None:
        fields = [f for f in args.fields.split(",") if f]
    if args.command == "expected" and args.expected < 1:
        err.write(f"cman_tool: expected votes must be at least 1, not {args.expected}\n")
        return EXIT_USAGE
    if client is None:
        from clusterd.control.client import ControlClient
        client = ControlClient(getattr(args, "control_socket", None))
    try:
        if args.command == "expected":
            reply = client.call(p.OP_QUORUM_EXPECTED, {"expected": args.expected})
        else:
            doc = client.call(p.OP_STATUS)
    except ControlError as exc:
        what = "can't set expected votes: " if args.command == "expected" else ""
        err.write(f"cman_tool: {what}{exc.message}\n")
        return exit_code_for(exc) or EXIT_FAILURE
    if args.command == "expected":
        text = (json.dumps(reply, sort_keys=True) + "\n" if fmt == "json"
                else render_expected(reply))
        out.write(text)
        err.write(EXPECTED_WARNING)
        return 0
    if fmt == "json":
        data: Any = (status_fields(doc) if args.command in ("status", "version")
                     else node_rows(doc, args.names))
        out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    elif args.command == "status":
        out.write(render_status(doc))
    elif args.command == "version":
        f = status_fields(doc)
        out.write(f"{f['version'] or __version__} config {f['config_version']}\n")
    else:
        out.write(render_nodes(doc, names=args.names, addresses=args.addresses,
                               fields=fields, localtime=localtime))
    return 0


if __name__ == "__main__":
    sys.exit(main())
