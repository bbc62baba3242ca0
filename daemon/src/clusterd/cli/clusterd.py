"""clusterd: run the cluster daemon, or talk to the running one.

Daemon::

    clusterd [--config PATH] [--authkey PATH] [--node NAME] [--foreground]
             [--control-socket PATH] [--state-dir DIR] [--allow-uid UID]... [--allow-gid GID]...
             [--log-level LEVEL]

Without ``--foreground`` it detaches (double fork) after cluster.conf and the authkey have
been checked, and logs to syslog; the systemd unit runs it with ``--foreground`` (logs to
the journal, readiness by sd_notify).

Admin subcommands (thin clients of the control socket)::

    clusterd conf status              running config_version, hash, how many nodes hold it
    clusterd conf get [--reveal-secrets]
                                      print the running cluster.conf (canonical bytes),
                                      secret parameters masked unless root asks for them
    clusterd conf propose FILE [--wait SECONDS]
                                      validate, write and propagate FILE; prints how many
                                      nodes hold it (waiting up to SECONDS for all members)
    clusterd reload                   re-read --config from disk and propose it (SIGHUP
                                      also re-reads the keys)
    clusterd leave [--restart]        leave the cluster cleanly: stop this node's services
                                      (peers take them over), then the daemon exits 0;
                                      --restart: keep them running and exit at once, for
                                      a clusterd started again within the restart grace
                                      (what SIGTERM does under ``systemctl restart``)
    clusterd key status               the key this node sends with, the other keys it
                                      accepts, and the key each peer was last heard with
    clusterd key reload               re-read AUTHKEY, AUTHKEY.next and AUTHKEY.old
    clusterd key activate             rekey step 2: AUTHKEY -> AUTHKEY.old,
                                      AUTHKEY.next -> AUTHKEY, reload
    clusterd keygen [--size BYTES] PATH
                                      write a new random key (CSPRNG, default 256 bytes,
                                      mode 0400); never overwrites

Rekey without downtime (every step on every node before the next step):
1. install the new key as /etc/cluster/authkey.next (0400 root, the same bytes on every
   node) and run ``clusterd key reload``: every node accepts both keys;
2. ``clusterd key activate``: each node now sends with the new key;
3. when ``clusterd key status`` shows every peer on the new key, remove
   /etc/cluster/authkey.old and run ``clusterd key reload``.

Exit codes: 0 ok; 1 failure (daemon: could not start, or the run ended badly);
2 usage; 3 clusterd not running; 4 permission denied; 5 request refused (invalid config,
stale version, conflict, no quorum). ``--format json`` prints the reply as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from clusterd.conf import DEFAULT_PATH
from clusterd.control import protocol as p
from clusterd.control.access import AccessPolicy, parse_id_list
from clusterd.control.client import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    ControlClient,
    exit_code_for,
)
from clusterd.errors import ControlError, FatalError
from clusterd.wire.auth import (
    DEFAULT_AUTHKEY,
    DEFAULT_KEY_BYTES,
    MAX_KEY_BYTES,
    MIN_KEY_BYTES,
    generate_key,
    load_keyring,
)

logger = logging.getLogger("clusterd")
LEVELS = ("debug", "info", "warning", "error")
REKEY_HELP = """\
changing the cluster key without downtime (each step on every node before the next):
  1. install the new key as /etc/cluster/authkey.next (0400 root, the same bytes on
     every node; make it once with 'clusterd keygen PATH'), then 'clusterd key reload':
     every node accepts both keys and still sends with the old one
  2. 'clusterd key activate': authkey -> authkey.old, authkey.next -> authkey; the node
     sends with the new key and still accepts the old one
  3. when 'clusterd key status' shows every peer on the new key, remove
     /etc/cluster/authkey.old and run 'clusterd key reload'
"""


def _columns() -> int:
    """The terminal's width as shutil.get_terminal_size reads it ($COLUMNS, then the
    terminal on standard output, else 80)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _Parser(argparse.ArgumentParser):
    """argparse, its help formatter given the width: argparse would import shutil to read
    it (on every add_argument), and with it bz2 and lzma, 0.3 MB in every daemon for its
    whole life (issue 18). Subcommands' parsers are of this class too."""

    def _get_formatter(self) -> argparse.HelpFormatter:
        return self.formatter_class(prog=self.prog, width=_columns() - 2)


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="clusterd", description="Cluster daemon (membership, "
                                 "quorum, config, fencing, services) and its admin commands.",
                                 epilog=REKEY_HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=DEFAULT_PATH, metavar="PATH", help="cluster.conf")
    ap.add_argument("--authkey", default=DEFAULT_AUTHKEY, metavar="PATH",
                    help="cluster key (0400 root)")
    ap.add_argument("--node", metavar="NAME", help="local clusternode name (default: hostname)")
    ap.add_argument("--foreground", action="store_true", help="do not detach")
    ap.add_argument("--control-socket", metavar="PATH", help="control socket path")
    ap.add_argument("--state-dir", default="/var/lib/clusterd", metavar="DIR")
    ap.add_argument("--allow-uid", action="append", default=[], metavar="UID",
                    help="also allow this user on the control socket, read-only: changes "
                         "need root or cluster.conf's admin group (repeatable)")
    ap.add_argument("--allow-gid", action="append", default=[], metavar="GID",
                    help="also allow this group (primary or supplementary) on the control "
                         "socket, read-only (repeatable)")
    ap.add_argument("--web-user", metavar="USER",
                    help="the web service's system user (clusterd-web): it may use the "
                         "control socket and act for its logged-in users, with at most "
                         "their role (viewer: read, admin: changes)")
    ap.add_argument("--log-level", choices=LEVELS, default="info")
    ap.add_argument("--format", choices=("plain", "json"), default="plain",
                    help="output of the admin subcommands")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    conf = sub.add_parser("conf", help="cluster.conf of the running cluster")
    conf_sub = conf.add_subparsers(dest="conf_command", metavar="ACTION", required=True)
    conf_sub.add_parser("status", help="config_version, hash and how many nodes hold it")
    get = conf_sub.add_parser("get", help="print the running cluster.conf (secrets masked)")
    get.add_argument("--reveal-secrets", action="store_true",
                     help="print fence and resource secrets in clear (root only)")
    prop = conf_sub.add_parser("propose", help="validate, write and propagate a new file")
    prop.add_argument("file", metavar="FILE")
    prop.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                      help="wait up to SECONDS for every member to hold it (0: do not wait)")
    sub.add_parser("reload", help="re-read cluster.conf from disk and propose it (SIGHUP)")
    leave = sub.add_parser("leave", help="leave the cluster cleanly; the daemon exits")
    leave.add_argument("--restart", action="store_true",
                       help="keep this node's services running for the next clusterd "
                            "(start it again within the restart grace), exit at once")
    key = sub.add_parser("key", help="cluster keys of the running daemon (rekey)")
    key_sub = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    key_sub.add_parser("status", help="loaded keys and the key each peer uses")
    key_sub.add_parser("reload", help="re-read authkey, authkey.next and authkey.old")
    key_sub.add_parser("activate", help="authkey.next becomes the active key")
    gen = sub.add_parser("keygen", help="write a new random cluster key (0400)")
    gen.add_argument("path", metavar="PATH")
    gen.add_argument("--size", type=int, default=DEFAULT_KEY_BYTES, metavar="BYTES",
                     help=f"key length ({MIN_KEY_BYTES}..{MAX_KEY_BYTES}, default "
                          f"{DEFAULT_KEY_BYTES})")
    return ap


def _web_user(name: str | None) -> int | None:
    """The uid of ``--web-user`` (None without it); refuses root and unknown users."""
    if name is None:
        return None
    try:
        (uid,) = parse_id_list([name], "uid")
    except ValueError:
        raise ValueError(f"--web-user {name!r}: no such user on this node; create the "
                         "web service's system user (the cluster_node role does) or drop "
                         "the option") from None
    if uid == 0:
        raise ValueError("--web-user must not be root: the web service runs as a system "
                         "user of its own (clusterd-web)")
    return uid


def main(argv: Sequence[str] | None = None, *, client: Any = None,
         out: TextIO | None = None, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    out = out or sys.stdout
    if args.command is None:
        try:
            policy = AccessPolicy(parse_id_list(args.allow_uid, "uid"),
                                  parse_id_list(args.allow_gid, "gid"),
                                  _web_user(args.web_user))
        except ValueError as exc:
            ap.error(str(exc))
        return run_daemon(args, policy)
    if args.command == "keygen":
        return _keygen(args, out)
    client = client or ControlClient(args.control_socket)
    try:
        return _admin(args, client, out, sleep, clock)
    except ControlError as exc:
        sys.stderr.write(f"clusterd: {exc.message}\n")
        return exit_code_for(exc)
    except OSError as exc:
        sys.stderr.write(f"clusterd: {exc.filename}: {exc.strerror}\n")
        return EXIT_FAILURE


def _emit(out: TextIO, fmt: str, doc: Any, text: str) -> None:
    out.write(json.dumps(doc, indent=2, sort_keys=True) + "\n" if fmt == "json" else text)


def _holders_line(version: int, sha: str, holders: int, members: int) -> str:
    return (f"config_version {version} (sha256 {sha[:12]}) is held by {holders} of "
            f"{members} member{'s' if members != 1 else ''}\n")


def _conf_status(client: Any) -> dict[str, Any]:
    doc = client.call(p.OP_STATUS)
    c = doc["cluster"]
    return {"version": c["config_version"], "sha256": c["config_sha256"],
            "holders": c["config_holders"], "members": max(1, len(doc["view"]["members"])),
            "conflict": c.get("config_conflict")}


def _keygen(args: argparse.Namespace, out: TextIO) -> int:
    try:
        key = generate_key(args.path, args.size)
    except ValueError as exc:
        sys.stderr.write(f"clusterd: keygen: {exc}\n")
        return EXIT_USAGE
    except FileExistsError:
        sys.stderr.write(f"clusterd: keygen: {args.path} exists; a key is never "
                         "overwritten (remove it first if you mean it)\n")
        return EXIT_FAILURE
    except OSError as exc:
        sys.stderr.write(f"clusterd: keygen: {args.path}: {exc.strerror}\n")
        return EXIT_FAILURE
    _emit(out, args.format, {"path": args.path, "bytes": args.size, "id": key.key_id},
          f"wrote a {args.size}-byte key to {args.path} (id {key.key_id}, mode 0400)\n")
    return EXIT_OK


def _key_text(doc: dict[str, Any]) -> str:
    lines = [f"active key {doc['active']} ({doc['path']})"]
    lines += [f"also accepts {k['id']} ({k['path']})" for k in doc["accepted"]]
    for name, kid in sorted(doc["peers"].items()):
        lines.append(f"  {name}: {kid or 'not heard yet'}"
                     f"{'' if kid in (None, doc['active']) else ' (not the active key)'}")
    return "\n".join(lines) + "\n"


def _admin(args: argparse.Namespace, client: Any, out: TextIO,
           sleep: Callable[[float], None], clock: Callable[[], float]) -> int:
    if args.command == "key":
        doc = client.call(f"key.{args.key_command}")
        _emit(out, args.format, doc, _key_text(doc))
        return EXIT_OK
    if args.command == "leave":
        doc = client.call(p.OP_LEAVE, {"mode": "restart"} if args.restart else None)
        _emit(out, args.format, doc, "clusterd exits for a restart; its services keep "
              "running\n" if doc.get("mode") == "restart" else
              "clusterd is leaving the cluster\n")
        return EXIT_OK
    if args.command == "conf" and args.conf_command == "get":
        doc = client.call(p.OP_CONF_GET, {"text": True, "reveal_secrets": args.reveal_secrets})
        _emit(out, args.format, doc, doc["conf"])
        return EXIT_OK
    if args.command == "conf" and args.conf_command == "status":
        s = _conf_status(client)
        text = _holders_line(s["version"], s["sha256"], s["holders"], s["members"])
        if s["conflict"]:
            text += (f"CONFLICT: {s['conflict']['peer']} runs config_version "
                     f"{s['conflict']['version']} with different content\n")
        _emit(out, args.format, s, text)
        return EXIT_OK
    if args.command == "reload":
        result = client.call(p.OP_RELOAD)
    else:                                                   # conf propose FILE
        with open(args.file, "rb") as fh:
            data = fh.read(p.MAX_REQUEST_BYTES)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ControlError(p.E_BAD_ARGS, f"{args.file} is not UTF-8 text") from None
        result = client.call(p.OP_CONF_PROPOSE, {"conf": text})
        deadline = clock() + max(0.0, args.wait)
        while result["holders"] < result["members"] and clock() < deadline:
            sleep(0.2)
            s = _conf_status(client)
            if (s["version"], s["sha256"]) != (result["version"], result["sha256"]):
                break
            result = {**result, "holders": s["holders"], "members": s["members"]}
    text = f"{result['reason']}\n" + _holders_line(result["version"], result["sha256"],
                                                    result["holders"], result["members"])
    _emit(out, args.format, result, text)
    return EXIT_OK


def _daemonize() -> None:
    """Classic double fork; stdio to /dev/null (logs then go to syslog)."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _without_tls() -> None:
    """Keep ssl out of the daemon's process. The daemon speaks no TLS (cluster packets are
    sealed with AES-GCM, the control socket is a local socket, alerts and agents are
    programs of their own), but asyncio imports ssl to offer it: about 1.3 MB of RSS
    (the module and libssl). ``None`` in ``sys.modules`` makes that import fail, and
    asyncio runs without TLS as on a Python built without it. Only where asyncio is not
    imported yet: a process that already has it (a test runner) is left as it is."""
    if "asyncio" not in sys.modules:
        sys.modules.setdefault("ssl", None)


def run_daemon(args: argparse.Namespace, policy: AccessPolicy) -> int:
    _without_tls()
    from clusterd import logsetup
    from clusterd.node import shutdown
    from clusterd.node.daemon import Daemon
    from clusterd.node.wiring import Options, Runtime

    opts = Options(config_path=args.config, authkey_path=args.authkey, node=args.node,
                   control_socket=args.control_socket, state_dir=args.state_dir, policy=policy)
    try:
        rt = Runtime(opts)
        keys = load_keyring(opts.authkey_path)  # authkey.next/.old too, before detaching
    except FatalError as exc:
        sys.stderr.write(f"clusterd: {exc}\n")
        return EXIT_FAILURE
    stream = None
    if not args.foreground:
        if os.path.exists("/dev/log"):
            stream = _SyslogStream()
        else:
            sys.stderr.write("clusterd: no /dev/log: detached, the daemon's log is "
                             "discarded (run with --foreground to keep it)\n")
        _daemonize()
    level = getattr(logging, args.log_level.upper())
    log = logsetup.setup_logging(rt.local.name, level=level, stream=stream)
    code = EXIT_FAILURE
    try:
        code = shutdown.run(Daemon(opts, rt, log, keys=keys).run())
    except FatalError as exc:
        logger.error("node %s: %s", rt.local.name, exc)
    except KeyboardInterrupt:
        pass
    stuck = shutdown.busy_threads()
    if stuck:                # the interpreter would join them: exit without waiting
        logger.warning("node %s: not waiting for %s", rt.local.name, "; ".join(stuck))
    log.stop()
    if stuck:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


class _SyslogStream:
    """A write()-able stream that forwards each line to syslog (detached mode only)."""

    def __init__(self) -> None:
        self.handler = logging.handlers.SysLogHandler(address="/dev/log")

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line:
                self.handler.emit(logging.LogRecord("clusterd", logging.INFO, "", 0, line,
                                                    None, None))
        return len(text)

    def flush(self) -> None:
        pass


if __name__ == "__main__":
    sys.exit(main())
