"""cluster-lab: bring the lab of emulated nodes up and down, power nodes through their
BMCs, cut and heal their network, run commands in them. Exit codes: 0 ok, 1 failure,
2 bad usage; every error is one line on stderr."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from typing import NoReturn

from .errors import LabError, UsageError
from .light import LIGHT_MAX_NODES
from .render import DIRECTIONS
from .spec import DEFAULT_PREFIX, DEFAULT_SUBNET, MAX_NODES

logger = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cluster-lab", description=__doc__.split("\n\n")[0])
    p.add_argument("--prefix", default=os.environ.get("RHC_LAB_PREFIX", DEFAULT_PREFIX),
                   help="lab name prefix (default rhc; env RHC_LAB_PREFIX)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    up = sub.add_parser("up", help="bring N nodes up (builds the image on first use)")
    up.add_argument("-n", "--nodes", type=int, default=3,
                    help=f"1..{MAX_NODES} (default 3); light: 1..{LIGHT_MAX_NODES}")
    up.add_argument("--light", action="store_true",
                    help="light nodes: a namespace plus one clusterd each, no systemd/sshd/"
                         "BMC (docs/lab-light.md)")
    up.add_argument("--token", type=int, metavar="MS",
                    help="light only: totem@token of the nodes' cluster.conf (default: the "
                         "daemon's 1000 ms)")
    up.add_argument("--subnet", default=os.environ.get("RHC_LAB_SUBNET", DEFAULT_SUBNET),
                    help="a /24 inside 198.18.0.0/15 (default 198.18.0.0/24; env "
                         "RHC_LAB_SUBNET); a second lab needs its own --prefix and --subnet")
    sub.add_parser("down", help="remove everything the lab made")
    st = sub.add_parser("status", help="nodes, power, BMCs, readiness")
    st.add_argument("--json", action="store_true")
    pw = sub.add_parser("power", help="power a node on/off/status through its BMC")
    pw.add_argument("node")
    pw.add_argument("action", choices=("on", "off", "status"))
    pw.add_argument("--no-wait", action="store_true",
                    help="return once the BMC accepted (default: wait for sshd / power off)")
    de = sub.add_parser("die", help="a node's server dies for good: powered off through its "
                        "BMC, which can no longer power it on (until replace)")
    de.add_argument("node")
    rp = sub.add_parser("replace", help="a new bare server in a node's place (same name, "
                        "address, BMC): the old root deleted, booted from the image")
    rp.add_argument("node")
    bm = sub.add_parser("bmc", help="stop/start a node's emulated BMC (the node keeps running)")
    bm.add_argument("node")
    bm.add_argument("action", choices=("stop", "start", "status"))
    pa = sub.add_parser("partition", help="drop a node's traffic with other nodes")
    pa.add_argument("node")
    pa.add_argument("--direction", default="both", choices=DIRECTIONS)
    pa.add_argument("--peers", help="comma-separated nodes (default: all others + floating)")
    he = sub.add_parser("heal", help="remove a node's partition")
    he.add_argument("node")
    ex = sub.add_parser("exec", help="run a command inside a node: exec NODE -- CMD...")
    ex.add_argument("node")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    sh = sub.add_parser("ssh", help="print the ssh command that reaches a node")
    sh.add_argument("node")
    inv = sub.add_parser("inventory", help="write the Ansible inventory")
    inv.add_argument("-o", "--output", help="file, mode 0600 (default: print to stdout)")
    inv.add_argument("--show-secrets", action="store_true",
                     help="print the BMC password too (stdout hides it by default)")
    return p


def _run(args: argparse.Namespace) -> int:
    from .lab import Lab

    if args.cmd == "up" and args.light:
        from .light_cli import up_light
        return up_light(args)
    if args.cmd == "up":
        lab = Lab.up(nodes=args.nodes, prefix=args.prefix, subnet=args.subnet,
                     progress=lambda msg: print(f"cluster-lab: {msg}", flush=True))
        up_s = lab.status()["up_seconds"]
        print(f"cluster-lab: lab up in {up_s} s; inventory {lab.inventory_path}; "
              f"ssh key {lab.ssh_key_path}")
        return 0
    if args.cmd == "down":
        from . import teardown
        from .spec import LabSpec
        spec = LabSpec.create(prefix=args.prefix)
        removed = teardown.teardown(spec)
        left = {k: v for k, v in teardown.leftovers(spec).items() if v}
        print(f"cluster-lab: removed {len(removed)} objects" if removed
              else "cluster-lab: nothing to remove")
        if left:
            raise LabError(f"could not remove: {left}")
        return 0
    from .light import is_light
    if is_light(args.prefix):
        from .light_cli import run_light
        return run_light(args)
    lab = Lab.load(args.prefix)
    if args.cmd == "status":
        _print_status(lab.status(), args.json)
    elif args.cmd == "power":
        result = lab.power(args.node, args.action, wait=not args.no_wait)
        print(f"{lab.node(args.node).name}: {result}")
    elif args.cmd == "die":
        lab.die(args.node)
        print(f"{lab.node(args.node).name}: dead (its BMC cannot power it on; cluster-lab "
              f"replace {lab.node(args.node).name})")
    elif args.cmd == "replace":
        seconds = lab.replace(args.node)
        print(f"{lab.node(args.node).name}: replaced by a new bare server, up in {seconds} s")
    elif args.cmd == "bmc":
        print(f"{lab.node(args.node).name}: BMC {lab.bmc_control(args.node, args.action)}")
    elif args.cmd == "partition":
        peers = [p for p in args.peers.split(",") if p] if args.peers is not None else None
        cut = lab.partition(args.node, args.direction, peers)
        print(f"{lab.node(args.node).name}: partitioned ({args.direction}) from "
              f"{', '.join(cut)}")
    elif args.cmd == "heal":
        healed = lab.heal(args.node)
        print(f"{lab.node(args.node).name}: " + ("healed" if healed else "was not partitioned"))
    elif args.cmd == "exec":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise UsageError("exec: give a command after --, e.g. exec node1 -- hostname")
        proc = lab.exec(args.node, command, check=False, timeout=3600)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        return proc.returncode
    elif args.cmd == "ssh":
        print(" ".join(lab.ssh_argv(args.node)))
    elif args.cmd == "inventory":
        if args.output:
            print(f"cluster-lab: wrote {lab.write_inventory(args.output)}")
        else:
            text = lab.inventory_path.read_text()
            if not args.show_secrets:
                text = re.sub(r"(cluster_lab_bmc_password:) .*",
                              rf"\1 '<lab-only secret: {lab.inventory_path}>'", text)
            sys.stdout.write(text)
    return 0


def _print_status(status: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status, indent=1))
        return
    print(f"lab {status['prefix']}: bridge {status['bridge']} host {status['host']}, "
          f"client {status['client']['address']} (netns {status['client']['netns']}), "
          f"floating {status['floating']}")
    print(f"{'NODE':7} {'ADDRESS':13} {'POWER':5} {'SYSTEM':9} {'SSH':4} {'RSS':>7} "
          f"{'PARTITION':9} BMC")
    for n in status["nodes"]:
        rss = f"{n['rss_mb']}M" if "rss_mb" in n else "-"
        print(f"{n['name']:7} {n['address']:13} {n['power']:5} {n.get('system', '-'):9} "
              f"{('yes' if n.get('ssh') else 'no'):4} {rss:>7} {n.get('partition', '-'):9} "
              f"{n['bmc']}:623 ({'up' if n['bmc_alive'] else 'DOWN'})")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"{exc}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="cluster-lab: %(message)s")
    try:
        return _run(args)
    except LabError as exc:
        print(f"cluster-lab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cluster-lab: interrupted (run cluster-lab down to clean up)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
