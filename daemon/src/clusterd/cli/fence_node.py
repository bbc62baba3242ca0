"""fence_node: fence a node by hand, or unfence this node (``-U``).

``fence_node NODE`` asks clusterd (control op ``fence.node``) to fence NODE, waits for the
outcome of the first attempt and prints it as RHCS did: ``fence NODE success`` (exit 0) or
``fence NODE failed`` (exit 1). The cluster keeps retrying a failed fence on its own until
it succeeds or an administrator runs ``fence_ack_manual NODE``. ``-v`` adds the method and
the (redacted) agent error; ``--format json`` prints the operation.

``fence_node --verify [NODE ...]`` asks clusterd (control op ``fence.verify``) to check
the fence path of every node (or of the named ones) with each device's ``status`` (or
``monitor``) action, without powering anything, and prints per node the working method or
why none works; exit 1 when a node has no working fence path.

``fence_node -U [NODE]`` runs this node's ``<unfence>`` devices locally from cluster.conf
(the daemon need not run; the cman init script did this at start), NODE defaulting to the
local node name. A node without an ``<unfence>`` section is a no-op (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from clusterd import __version__
from clusterd.errors import ConfigError, ControlError

if TYPE_CHECKING:
    from clusterd.conf import ClusterConf

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
POLL = 0.2


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fence_node", description="Run fence agents for NODE.")
    ap.add_argument("node", nargs="?", help="node name (with -U: default the local node)")
    ap.add_argument("more", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--verify", action="store_true",
                    help="check the fence path of every node (or of the named ones) with "
                         "status/monitor; nothing is powered off")
    ap.add_argument("-U", dest="unfence", action="store_true", help="unfence the node")
    ap.add_argument("-v", dest="verbose", action="count", default=0,
                    help="show fence agent results")
    ap.add_argument("-V", dest="version", action="store_true", help="print the version")
    ap.add_argument("--reason", default="", help="why (shown in clustat and the log)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds to wait for the first attempt (default 300)")
    ap.add_argument("--format", choices=("plain", "json"), default="plain")
    ap.add_argument("--control-socket", metavar="PATH", help="control socket path")
    ap.add_argument("--config", metavar="PATH", help="cluster.conf for -U "
                                                     "(default /etc/cluster/cluster.conf)")
    ap.add_argument("--agent-dir", action="append", help=argparse.SUPPRESS)  # tests only
    return ap


def _client(path: str | None) -> Any:
    try:
        from clusterd.control.client import ControlClient
    except ImportError:
        raise ControlError("not_running", "clusterd is not running (its control client is "
                                          "not installed)") from None
    return ControlClient(path)


def _wait(client: Any, node: str, op_id: str, timeout: float, sleep: Callable[[float], None],
          clock: Callable[[], float]) -> dict[str, Any] | None:
    """Poll fence.status until the operation succeeded, was acknowledged, or has failed at
    least once; None on timeout."""
    deadline = clock() + timeout
    while True:
        doc = client.call("fence.status", {"node": node})
        ops = [o for o in doc.get("fencing", ()) if o.get("op_id") == op_id]
        if ops and (ops[0]["state"] == "done" or ops[0].get("last_error")):
            return ops[0]
        if not ops:
            return {"op_id": op_id, "state": "cancelled", "node": node, "last_error": "",
                    "method": ""}
        if clock() >= deadline:
            return None
        sleep(POLL)


def _fence(args: argparse.Namespace, out: TextIO, err: TextIO, client: Any,
           sleep: Callable[[float], None], clock: Callable[[], float]) -> int:
    try:
        client = client or _client(args.control_socket)
        reply = client.call("fence.node", {"node": args.node, "reason": args.reason or
                                           "fence_node by hand"})
        if not reply.get("quorate", True):
            err.write(f"fence_node: the cluster is not quorate; {args.node} will be fenced "
                      f"when quorum returns\n")
        op = _wait(client, args.node, reply["op_id"], args.timeout, sleep, clock)
    except ControlError as exc:
        err.write(f"fence_node: {exc.message}\n")
        return EXIT_NOT_RUNNING if exc.code == "not_running" else EXIT_FAILED
    if args.format == "json":
        out.write(json.dumps(op or {"op_id": reply["op_id"], "state": "timeout"},
                             sort_keys=True) + "\n")
    if op is None:
        err.write(f"fence_node: no outcome for {args.node} within {args.timeout:g}s; "
                  f"the cluster keeps trying (see clustat)\n")
        return EXIT_FAILED
    ok = op["state"] == "done"
    if args.format == "plain":
        out.write(f"fence {args.node} {'success' if ok else 'failed'}\n")
        if args.verbose:
            if op.get("method"):
                out.write(f"  method: {op['method']}\n")
            if op.get("last_error"):
                out.write(f"  error: {op['last_error']}\n")
            if not ok:
                out.write(f"  the cluster retries until it succeeds or "
                          f"`fence_ack_manual {args.node}`\n")
    return EXIT_OK if ok else EXIT_FAILED


def _verify(args: argparse.Namespace, out: TextIO, err: TextIO, client: Any) -> int:
    nodes = [n for n in (args.node, *args.more) if n]
    try:
        client = client or _client(args.control_socket)
        reply = client.call("fence.verify", {"nodes": nodes} if nodes else {})
    except ControlError as exc:
        err.write(f"fence_node: {exc.message}\n")
        return EXIT_NOT_RUNNING if exc.code == "not_running" else EXIT_FAILED
    if args.format == "json":
        out.write(json.dumps(reply, sort_keys=True) + "\n")
    else:
        for entry in reply.get("nodes", ()):
            if entry.get("ok"):
                method = next((m for m in entry.get("methods", ())
                               if m.get("name") == entry.get("method")), {})
                devices = ", ".join(f"{d['device']} power {d['power']}" if d.get("power")
                                    else f"{d['device']} {d.get('action', '')} ok"
                                    for d in method.get("devices", ()))
                out.write(f"{entry['node']} ok: method {entry['method']} ({devices})\n")
            else:
                out.write(f"{entry['node']} UNFENCEABLE: {entry.get('error', '?')}\n")
    return EXIT_FAILED if reply.get("unfenceable") else EXIT_OK


def _unfence(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from clusterd.conf import DEFAULT_PATH, load
    from clusterd.fencing.agent import AgentRunner
    from clusterd.fencing.methods import unfence_node
    try:
        conf = load(args.config or DEFAULT_PATH)
    except (ConfigError, OSError) as exc:
        err.write(f"fence_node: cannot read cluster.conf: {exc}\n")
        return EXIT_FAILED
    node = args.node or _local_node(conf)
    if node is None or conf.node_by_name(node) is None:
        err.write(f"fence_node: node {node or socket.gethostname()!r} is not in cluster.conf; "
                  f"name it: fence_node -U NODE\n")
        return EXIT_USAGE
    runner = AgentRunner(search_dirs=args.agent_dir) if args.agent_dir else AgentRunner()
    outcome = asyncio.run(unfence_node(node, conf, runner))
    if args.format == "json":
        out.write(json.dumps({"node": node, "ok": outcome.ok, "devices": list(outcome.devices),
                              "errors": list(outcome.errors)}, sort_keys=True) + "\n")
    else:
        out.write(f"unfence {node} {'success' if outcome.ok else 'failed'}\n")
        if args.verbose:
            out.writelines(f"  device: {device}\n" for device in outcome.devices)
        out.writelines(f"  error: {error}\n" for error in outcome.errors)
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _local_node(conf: ClusterConf) -> str | None:
    host = socket.gethostname()
    for name in (host, host.split(".")[0]):
        if conf.node_by_name(name) is not None:
            return name
    return None


def main(argv: Sequence[str] | None = None, *, client: Any = None, out: TextIO | None = None,
         err: TextIO | None = None, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    out, err = out or sys.stdout, err or sys.stderr
    if args.version:
        out.write(f"fence_node {__version__}\n")
        return EXIT_OK
    if args.verify:
        return _verify(args, out, err, client)
    if args.more:
        ap.print_usage(err)
        err.write("fence_node: one NODE at a time (several only with --verify)\n")
        return EXIT_USAGE
    if args.unfence:
        return _unfence(args, out, err)
    if not args.node:
        ap.print_usage(err)
        err.write("fence_node: NODE is required (unless -U)\n")
        return EXIT_USAGE
    return _fence(args, out, err, client, sleep, clock)


if __name__ == "__main__":
    sys.exit(main())
