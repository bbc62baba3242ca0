"""cluster-lab's commands on a light lab (`up --light`, and every command on a lab whose
state file says kind=light). Same exit codes and one-line errors as cli.py."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .errors import LabError, UsageError
from .light import LightLab


def up_light(args: argparse.Namespace) -> int:
    started = time.monotonic()
    lab = LightLab.up(nodes=args.nodes, prefix=args.prefix, subnet=args.subnet,
                      progress=lambda msg: print(f"cluster-lab: {msg}", flush=True),
                      token_ms=args.token)
    print(f"cluster-lab: {args.nodes} light nodes started, every control socket answers "
          f"({time.monotonic() - started:.1f} s)", flush=True)
    timeout = 30.0 + 0.6 * args.nodes
    try:
        view = lab.wait_agreed(timeout=timeout)
    except LabError as exc:
        raise LabError(f"{exc}; the lab stays up (cluster-lab --prefix {args.prefix} status "
                       f"shows each view; cluster-lab --prefix {args.prefix} down removes "
                       "it)") from None
    print(f"cluster-lab: light lab up in {time.monotonic() - started:.1f} s: one view "
          f"(epoch {view[0]}) of all {len(view[1])} nodes")
    return 0


def run_light(args: argparse.Namespace) -> int:
    lab = LightLab.load(args.prefix)
    if args.cmd == "status":
        _print_status(lab.status(), args.json)
    elif args.cmd == "power":
        result = lab.power(args.node, args.action, wait=not args.no_wait)
        print(f"{lab.node(args.node).name}: {result}")
    elif args.cmd == "die":
        lab.die(args.node)
        print(f"{lab.node(args.node).name}: dead (cluster-lab replace "
              f"{lab.node(args.node).name})")
    elif args.cmd == "replace":
        seconds = lab.replace(args.node)
        print(f"{lab.node(args.node).name}: replaced (new state dir), answering in {seconds} s")
    elif args.cmd == "partition":
        peers = [p for p in args.peers.split(",") if p] if args.peers is not None else None
        cut = lab.partition(args.node, args.direction, peers)
        print(f"{lab.node(args.node).name}: partitioned ({args.direction}) from {len(cut)} "
              "nodes")
    elif args.cmd == "heal":
        healed = lab.heal(args.node)
        print(f"{lab.node(args.node).name}: " + ("healed" if healed else "was not partitioned"))
    elif args.cmd == "exec":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise UsageError("exec: give a command after --, e.g. exec l1 -- ip addr")
        proc = lab.exec(args.node, command, check=False, timeout=3600)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        return proc.returncode
    else:
        raise UsageError(f"{args.cmd}: light nodes have no BMC, sshd or inventory (they are "
                         "a namespace plus clusterd)")
    return 0


def _print_status(status: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status, indent=1))
        return
    print(f"light lab {status['prefix']}: bridge {status['bridge']} host {status['host']}, "
          f"{len(status['nodes'])} nodes")
    print(f"{'NODE':5} {'ADDRESS':15} {'POWER':5} {'PID':>7} {'RSS':>7} {'PARTITION':9} VIEW")
    for n in status["nodes"]:
        rss = f"{n['rss_mb']}M" if "rss_mb" in n else "-"
        view = (f"epoch {n['view']['epoch']}, {n['view']['members']} members"
                if n["view"] else "-")
        print(f"{n['name']:5} {n['address']:15} {n['power']:5} {n['pid'] or '-':>7} {rss:>7} "
              f"{n['partition']:9} {view}")
