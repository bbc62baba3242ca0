"""fence_ack_manual: tell the cluster that a node was fenced by hand.

Use only after making sure the node is really off (power cord, BMC, storage cut): the
cluster then recovers its services elsewhere, and if the node is in fact still running
them the same data is used twice. It asks for confirmation as RHCS did ("Continue
[NO/absolutely]?"); ``-y`` skips the question (for scripts); without a terminal and without
``-y`` it refuses. Control op ``fence.ack``; refused when no fence operation is pending.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from clusterd import __version__
from clusterd.errors import ControlError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_ABORTED = 6

WARNING = """\
WARNING: About to override fencing for {node}.
Only do this if {node} is really powered off or cut off from shared storage.
The cluster will recover {node}'s services elsewhere; if {node} is still running them,
the same data is used twice. Improper use of this command can cause severe file system
damage.
"""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fence_ack_manual",
                                 description="Acknowledge that NODE was fenced by hand.")
    ap.add_argument("node", help="the node that is known to be off")
    ap.add_argument("-y", "--yes", action="store_true",
                    help="do not ask for confirmation (non-interactive)")
    ap.add_argument("-V", dest="version", action="store_true", help="print the version")
    ap.add_argument("--format", choices=("plain", "json"), default="plain")
    ap.add_argument("--control-socket", metavar="PATH", help="control socket path")
    return ap


def _client(path: str | None) -> Any:
    try:
        from clusterd.control.client import ControlClient
    except ImportError:
        raise ControlError("not_running", "clusterd is not running (its control client is "
                                          "not installed)") from None
    return ControlClient(path)


def main(argv: Sequence[str] | None = None, *, client: Any = None, out: TextIO | None = None,
         err: TextIO | None = None, stdin: TextIO | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["-V"]:
        (out or sys.stdout).write(f"fence_ack_manual {__version__}\n")
        return EXIT_OK
    args = _parser().parse_args(argv)
    out, err, stdin = out or sys.stdout, err or sys.stderr, stdin or sys.stdin
    err.write(WARNING.format(node=args.node))
    if not args.yes:
        if not stdin.isatty():
            err.write("fence_ack_manual: refusing without a terminal; re-run with -y once "
                      "you are sure the node is off\n")
            return EXIT_USAGE
        err.write("\nContinue [NO/absolutely]? ")
        err.flush()
        if stdin.readline().strip() != "absolutely":
            err.write("Aborted.\n")
            return EXIT_ABORTED
    try:
        client = client or _client(args.control_socket)
        reply = client.call("fence.ack", {"node": args.node})
    except ControlError as exc:
        err.write(f"fence_ack_manual: {exc.message}\n")
        return EXIT_NOT_RUNNING if exc.code == "not_running" else EXIT_FAILED
    if args.format == "json":
        out.write(json.dumps(reply, sort_keys=True) + "\n")
    else:
        out.write(f"Done: fencing of {args.node} acknowledged ({reply.get('op_id', '')})\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
