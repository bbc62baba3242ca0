"""clusvcadm: enable, disable, relocate, restart, stop, freeze and unfreeze services.

A thin client of clusterd's control socket (ops ``svc.*``): the daemon (its coordinator)
checks the request, acts and waits for the outcome; this prints it the way RHCS's
clusvcadm did (``rgmanager/src/utils/clusvcadm.c``)::

    Local machine trying to enable service:web...Success
    service:web is now running on node1

Exit status: the RG_E* code modulo 256 (RG_EFAIL -1 -> 255, RG_EQUORUM -9 -> 247 ...);
0 on success and for "Service is already running" (RG_ERUN). A daemon that cannot be
reached exits as the other CLIs do (3 not running, 4 permission denied).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from clusterd import __version__
from clusterd.errors import ControlError

EXIT_USAGE = 2
_ACTIONS = {  # option dest -> (op, words after "Local machine"/"Member X")
    "enable": ("svc.enable", "trying to enable"),
    "disable": ("svc.disable", "disabling"),
    "relocate": ("svc.relocate", "trying to relocate"),
    "restart": ("svc.restart", "trying to restart"),
    "stop": ("svc.stop", "stopping"),
    "freeze": ("svc.freeze", "freezing"),
    "unfreeze": ("svc.unfreeze", "unfreezing"),
    "migrate": ("svc.migrate", "trying to migrate"),
    "convalesce": ("svc.convalesce", "trying to convalesce"),
}
# -l / -u / -S: rgmanager's do_lock(), do_unlock(), do_query_lock() texts (exit 1 on failure)
_LOCKS = {"lock": ("svc.lock", "Resource groups locked", "Lock operation failed"),
          "unlock": ("svc.unlock", "Resource groups unlocked", "Unlock operation failed"),
          "lock_state": ("svc.lock_state", "", "Query operation failed")}
RG_ERUN = -10
RG_ERELO = -17   # relocation failed everywhere: running on the original owner again


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="clusvcadm", description="Cluster service manager.")
    group = ap.add_mutually_exclusive_group()
    for opt, dest in (("-e", "enable"), ("-d", "disable"), ("-r", "relocate"),
                      ("-R", "restart"), ("-s", "stop"), ("-Z", "freeze"),
                      ("-U", "unfreeze"), ("-M", "migrate"), ("-c", "convalesce")):
        group.add_argument(opt, dest=dest, metavar="SERVICE", help=f"{dest} SERVICE")
    group.add_argument("-l", dest="lock", action="store_true",
                       help="lock services: none starts anywhere (before a cluster shutdown)")
    group.add_argument("-u", dest="unlock", action="store_true", help="unlock services")
    group.add_argument("-S", dest="lock_state", action="store_true",
                       help="show whether services are locked")
    ap.add_argument("-m", "-n", dest="member", metavar="MEMBER",
                    help="target member (with -e or -r)")
    ap.add_argument("-F", dest="follow_domain", action="store_true",
                    help="enable per failover domain rules (with -e, not with -m)")
    ap.add_argument("-q", dest="quiet", action="store_true", help="quiet")
    ap.add_argument("-v", dest="version", action="store_true", help="print the version")
    ap.add_argument("--timeout", type=int, default=60, metavar="SECONDS",
                    help="how long the daemon waits for the outcome (default 60)")
    ap.add_argument("--format", choices=("plain", "json"), default="plain")
    ap.add_argument("--control-socket", metavar="PATH", help="control socket path")
    return ap


def service_name(name: str) -> str:
    """RHCS: names without ':' are services (``vm:x`` must be explicit)."""
    return name if ":" in name else f"service:{name}"


def exit_code(code: int) -> int:
    return 0 if code in (0, RG_ERUN) else code % 256


def _client(path: str | None) -> Any:
    from clusterd.control.client import ControlClient
    return ControlClient(path, timeout=3600)


def main(argv: Sequence[str] | None = None, *, client: Any = None,
         out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    ap = _parser()
    args = ap.parse_args(argv)
    if args.version:
        print(f"clusvcadm (clusterd) {__version__}", file=out)
        return 0
    lock = next((a for a in _LOCKS if getattr(args, a)), None)
    if lock is not None:
        return _lock(lock, args, client, out, err)
    action = next((a for a in _ACTIONS if getattr(args, a)), None)
    if action is None:
        ap.print_usage(err)
        print("clusvcadm: error: one of -e -d -r -R -s -Z -U -M -c -l -u -S is required",
              file=err)
        return EXIT_USAGE
    if args.member and action not in ("enable", "relocate", "migrate"):
        print("clusvcadm: error: -m goes with -e, -r or -M", file=err)
        return EXIT_USAGE
    if action == "migrate" and not args.member:
        print("clusvcadm: error: -M needs the target member (-m MEMBER)", file=err)
        return EXIT_USAGE
    if args.follow_domain and (action != "enable" or args.member):
        print("clusvcadm: error: -F goes with -e and cannot be combined with -m", file=err)
        return EXIT_USAGE
    if args.timeout <= 0:
        print("clusvcadm: error: --timeout must be positive", file=err)
        return EXIT_USAGE
    svc = service_name(getattr(args, action))
    op, words = _ACTIONS[action]
    call_args: dict[str, Any] = {"service": svc, "timeout": args.timeout}
    if args.member:
        call_args["member"] = args.member
    if args.follow_domain:
        call_args["follow_domain"] = True
    plain = args.format == "plain" and not args.quiet
    if plain:
        if action in ("relocate", "migrate"):
            intro = (f"Trying to {action} {svc}"
                     + (f" to {args.member}" if args.member else ""))
        elif args.member:
            intro = f"Member {args.member} {words} {svc}"
        else:
            intro = f"Local machine {words} {svc}"
        print(f"{intro}...", end="", file=out, flush=True)
    try:
        res = (client or _client(args.control_socket)).call(op, call_args)
    except ControlError as exc:
        from clusterd.control.client import exit_code_for
        if plain:
            print("Failure", file=out)
        print(f"clusvcadm: {exc.message}", file=err)
        return exit_code_for(exc)
    code = int(res.get("code", -1))
    if args.format == "json":
        print(json.dumps(res, sort_keys=True), file=out)
        return exit_code(code)
    if plain:
        print(res.get("message") or "Failure", file=out)
        if code not in (0, RG_ERUN) and res.get("detail"):
            print(f"clusvcadm: {res['detail']}", file=err)
        owner = res.get("owner")
        if (code in (0, RG_ERUN, RG_ERELO) and owner and res.get("state") == "started"
                and action in ("enable", "relocate", "restart")):
            warn = "Warning: " if args.member and owner != args.member else ""
            print(f"{warn}{svc} is now running on {owner}", file=out)
    return exit_code(code)


def _lock(lock: str, args: argparse.Namespace, client: Any, out: TextIO, err: TextIO) -> int:
    op, done, failed = _LOCKS[lock]
    try:
        res = (client or _client(args.control_socket)).call(op, {})
    except ControlError as exc:
        print(failed, file=out)
        print(f"clusvcadm: {exc.message}", file=err)
        return 1
    if args.format == "json":
        print(json.dumps(res, sort_keys=True), file=out)
    if lock == "lock_state":
        if args.format != "json" and not args.quiet:
            print("Resource groups " + ("locked" if res.get("locked") else "unlocked"),
                  file=out)
        return 0
    if int(res.get("code", -1)) != 0:
        print(failed, file=out)
        if res.get("detail"):
            print(f"clusvcadm: {res['detail']}", file=err)
        return 1
    if args.format != "json" and not args.quiet:
        print(done, file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
