"""clustat: cluster status, a thin client of the clusterd control socket.

Output reproduces rgmanager's ``clustat.c`` (RHCS 3.x late, the version with service
flags) byte for byte: the text layout and its printf column widths, the member flags,
``Owner (Last)``, state flags (``[Z]`` frozen, ``[P]`` partial), ``-l`` long format,
``-x`` XML (including its quirks: ``quorate="0"`` is followed by a newline inside the tag,
attribute values are not otherwise touched beyond XML escaping), and the exit codes of
``-s`` (0 if starting/started/stopping, else the numeric state), ``-m`` (0 online, 1
offline) and ``-Q`` (0 quorate, 1 not). Notes on fidelity:

* RHCS computed a name without the ``service:`` prefix when stdout was a tty but then
  printed ``rs_name`` anyway, so the prefix was always shown; so is it here.
* ``-s``/``-m`` naming something that does not exist exits 255 (RHCS returned -1).

clusterd extensions (not in RHCS), shown only when there is something to say: a
``Fencing`` section after the members listing pending, running or failed fence operations
(recovery of that node's services waits for them), and a ``Config Conflict`` line after
the quorum line when a peer runs the same config_version with different content. Also
``--format json`` prints the status document itself.

Rendering functions are pure: status document in, text out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from clusterd import __version__, metrics
from clusterd.control import protocol as p
from clusterd.control.client import EXIT_FAILURE, ControlClient, exit_code_for
from clusterd.errors import ControlError

MAXHOSTNAMELEN = 64
STATES = {"stopped": 110, "starting": 111, "started": 112, "stopping": 113, "failed": 114,
          "uninitialized": 115, "checking": 116, "recoverable": 117, "recovering": 118,
          "disabled": 119, "migrating": 120}
RUNNING_STATES = frozenset({"starting", "started", "stopping"})
OWNER_IN_PARENS = frozenset({"stopped", "disabled", "recoverable", "failed"})
FLAG_BITS = {"frozen": (1, "Z"), "partial": (2, "P")}
NOT_FOUND = 255

Doc = Mapping[str, Any]


_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})


def quoteattr(value: str) -> str:
    """Always double quotes (as clustat printed them), with XML escaping. (Not
    xml.sax.saxutils: it would switch quotes, and importing it costs 0.2 s.)"""
    return '"' + str(value).translate(_XML_ESCAPES) + '"'


def _ctime(t: float) -> str:
    return time.ctime(t)


def _shown_nodes(doc: Doc) -> list[Mapping[str, Any]]:
    # "If it's down and not in cluster.conf, don't show it"
    nodes = [n for n in doc.get("nodes", ()) if not (n.get("estranged")
                                                      and n.get("state") != "online")]
    qdisk = doc.get("qdisk")
    if qdisk:   # as cman listed it: node id 0, Online while its votes count here
        nodes.append({"name": qdisk.get("name") or "qdisk", "nodeid": 0, "qdisk": True,
                      "state": "online" if qdisk.get("granted") else "offline"})
    return sorted(nodes, key=lambda n: n.get("nodeid", 0))


def _services(doc: Doc) -> list[Mapping[str, Any]]:
    return sorted(doc.get("services", ()), key=lambda s: s["name"])


def service_name(name: str) -> str:
    """``-s foo`` means ``service:foo`` (names with a ``:`` are taken as given)."""
    return name if ":" in name else f"service:{name}"


def _flags(svc: Mapping[str, Any]) -> tuple[int, str, list[str]]:
    names = [f for f in svc.get("flags", ()) if f in FLAG_BITS]
    return (sum(FLAG_BITS[f][0] for f in names), "".join(FLAG_BITS[f][1] for f in names), names)


def _member_line(node: Mapping[str, Any], nodesize: int, master_present: bool) -> str:
    parts = ["Online" if node.get("state") == "online" else "Offline"]
    if node.get("local"):
        parts.append("Local")
    if node.get("estranged"):
        parts.append("Estranged")
    if node.get("rgmanager"):
        if master_present:
            parts.append("RG-Master" if node.get("rgmanager_master") else "RG-Worker")
        else:
            parts.append("rgmanager")
    if node.get("qdisk"):
        parts.append("Quorum Disk")
    if node.get("standby"):
        parts.append("Standby")
    return f" {node['name'][:nodesize]:<{nodesize}} {node.get('nodeid', 0):4d} {', '.join(parts)}\n"


def _member_header(nodesize: int) -> str:
    return (f" {'Member Name':<{nodesize}.{nodesize}}{'ID':<4.4} Status\n"
            f" {'------ ----':<{nodesize}.{nodesize}}{'----':<4.4} ------\n")


def _svc_sizes(cols: int) -> tuple[int, int, int]:
    statsize = 14
    size = min((cols - (statsize + 6)) // 2, MAXHOSTNAMELEN)
    return size, size, statsize


def _svc_header(svcsize: int, nodesize: int, statsize: int) -> str:
    def row(a: str, b: str, c: str) -> str:
        return f" {a:<{svcsize}.{svcsize}} {b:<{nodesize}.{nodesize}} {c:<{statsize}.{statsize}}\n"
    return row("Service Name", "Owner (Last)", "State") + row("------- ----", "----- ------",
                                                                 "-----")


def _svc_line(svc: Mapping[str, Any], svcsize: int, nodesize: int, statsize: int) -> str:
    state = svc.get("state", "uninitialized")
    if state in OWNER_IN_PARENS:
        owner = f"({(svc.get('last_owner') or 'none')[:nodesize - 2]})"
    else:
        owner = (svc.get("owner") or "none")[:nodesize]
    _, short, _ = _flags(svc)
    if short:
        width = statsize - (2 + len(short))
        state_str = f"{state[:width]:<{width}}[{short}]"
    else:
        state_str = f"{state:<{statsize}.{statsize}}"
    return (f" {svc['name']:<{svcsize}.{svcsize}} {owner:<{nodesize}.{nodesize}} "
            f"{state_str:<{statsize}.{statsize}}\n")


def _printable(text: str) -> str:
    """A daemon-supplied text for a terminal: control characters shown as '?'."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _svc_long(svc: Mapping[str, Any], ctime: Callable[[float], str]) -> str:
    state = svc.get("state", "uninitialized")
    bits, _, names = _flags(svc)
    return (f"Service Name      : {svc['name']}\n"
            f"  Current State   : {state} ({STATES.get(state, 0)})\n"
            f"  Flags           : {', '.join(names) if bits else 'none'} ({bits})\n"
            f"  Owner           : {svc.get('owner') or 'none'}\n"
            f"  Last Owner      : {svc.get('last_owner') or 'none'}\n"
            f"  Last Transition : {ctime(svc.get('last_transition', 0))}\n"
            + (f"  Reason          : {_printable(svc['reason'])}\n" if svc.get("reason") else "")
            + "\n")


FENCE_DONE_SHOWN = 3600     # with -l, completed fence operations stay listed this long (s)


def _fence_shown(op: Mapping[str, Any], now: float, long: bool) -> bool:
    """Open operations always; with -l also a completed one, for an hour after it
    finished (``--format json`` always has every operation)."""
    if op.get("state") != "done":
        return True
    if not long:
        return False
    finished = op.get("finished")
    return bool(finished) and now - float(finished) <= FENCE_DONE_SHOWN


def _fence_running(op: Mapping[str, Any], ctime: Callable[[float], str]) -> str:
    """What the attempt does now (``current``, on the executor) or who runs it."""
    cur = op.get("current")
    if not cur:
        return f"run by {op['executor']}" if op.get("executor") else ""
    text = (f"now method {cur.get('method')} device {cur.get('device')} ({cur.get('agent')}) "
            f"action {cur.get('action')} since {ctime(cur['since'])}")
    if cur.get("running"):
        text += f", agent timeout {cur.get('timeout', 0):g}s"
    return text + "".join(f"; failed: {e}" for e in cur.get("errors", ()))


def _fence_detail(op: Mapping[str, Any], ctime: Callable[[float], str]) -> str:
    if op.get("state") == "done":
        how = "acknowledged by hand" if op.get("acked") else f"method {op.get('method') or '?'}"
        return f"fenced {ctime(op['finished'])} ({how})"
    detail = f"since {ctime(op['since'])}" if op.get("since") else ""
    if op.get("state") == "running":
        detail = "; ".join(x for x in (detail, _fence_running(op, ctime)) if x)
    elif op.get("method"):
        detail = f"method {op['method']}, {detail}" if detail else f"method {op['method']}"
    if op.get("last_error"):
        detail += f"; last error: {op['last_error']}"
    if op.get("last_error") and op.get("next_attempt"):
        detail += f"; next attempt {ctime(op['next_attempt'])}"
    return detail


def _fencing_section(doc: Doc, nodesize: int, ctime: Callable[[float], str],
                     now: float = 0.0, long: bool = False) -> str:
    ops = [f for f in doc.get("fencing", ()) if _fence_shown(f, now, long)]
    if not ops:
        return ""
    out = [f" {'Fence Target':<{nodesize}.{nodesize}} {'State':<8} Attempts Detail\n",
           f" {'----- ------':<{nodesize}.{nodesize}} {'-----':<8} -------- ------\n"]
    for op in sorted(ops, key=lambda f: f["node"]):
        out.append(f" {op['node'][:nodesize]:<{nodesize}} {op.get('state', '?'):<8} "
                   f"{op.get('attempts', 0):8d} {_fence_detail(op, ctime)}\n")
    return "".join(out) + "\n"


def _conflict_line(doc: Doc) -> str:
    cluster = doc.get("cluster", {})
    out = []
    c = cluster.get("config_conflict")
    if c:
        out.append(f"Config Conflict: {c.get('peer', '?')} holds config_version "
                   f"{c.get('version', '?')} with different content (refused; propose a "
                   "higher config_version)\n")
    if cluster.get("config_accepted") is False:
        out.append(f"Config: config_version {cluster.get('config_version', '?')} is not "
                   "accepted by a quorate view yet\n")
    for u in cluster.get("config_unaccepted") or ():
        out.append(f"Config Unaccepted: {u.get('peer', '?')} runs config_version "
                   f"{u.get('version', '?')}, which no quorate view accepted (not admitted "
                   "until it adopts the cluster's)\n")
    return "".join(out) + ("\n" if out else "")


def render_text(doc: Doc, *, member: str | None = None, service: str | None = None,
                long: bool = False, cols: int = 80, now: float = 0.0,
                ctime: Callable[[float], str] = _ctime) -> tuple[str, int]:
    """The text report and the exit code RHCS would return for these options."""
    out: list[str] = []
    rc_member = rc_svc = 0
    nodesize = min(cols // 2, MAXHOSTNAMELEN)
    nodes = _shown_nodes(doc)
    services = _services(doc)
    if not member and not service:
        out.append(f"Cluster Status for {doc['cluster']['name']} @ {ctime(now)}\n")
        out.append(f"Member Status: {'Quorate' if doc['quorum']['quorate'] else 'Inquorate'}\n\n")
        out.append(_conflict_line(doc))
        if doc.get("services_locked"):
            out.append("Services locked: nothing starts or moves until clusvcadm -u\n\n")
    if not service or member:
        master = any(n.get("rgmanager_master") for n in nodes)
        if member is None:
            out.append(_member_header(nodesize))
            out.extend(_member_line(n, nodesize, master) for n in nodes)
            out.append("\n")
            out.append(_fencing_section(doc, nodesize, ctime, now, long))
        else:
            rc_member = NOT_FOUND
            for n in nodes:
                if n["name"] == member:
                    out.append(_member_header(nodesize) + _member_line(n, nodesize, master))
                    rc_member = 0 if n.get("state") == "online" else 1
                    break
    if services and (not member or service):
        svcsize, osize, statsize = _svc_sizes(cols)
        if long:
            out.append("Service Information\n------- -----------\n\n")
        elif not service:
            out.append(_svc_header(svcsize, osize, statsize))
        rc_svc = NOT_FOUND if service else 0
        for s in services:
            if service and s["name"] != service:
                continue
            if service and not long:
                out.append(_svc_header(svcsize, osize, statsize))
            out.append(_svc_long(s, ctime) if long else _svc_line(s, svcsize, osize, statsize))
            if service:
                rc_svc = 0 if s.get("state") in RUNNING_STATES else STATES.get(s.get("state"), 1)
    elif service:
        rc_svc = NOT_FOUND
    if member and rc_member:
        return "".join(out), rc_member
    if service and rc_svc:
        return "".join(out), rc_svc
    return "".join(out), 0


def render_xml(doc: Doc, *, member: str | None = None, service: str | None = None,
               ctime: Callable[[float], str] = _ctime) -> tuple[str, int]:
    """``clustat -x`` as RHCS printed it."""
    out = ['<?xml version="1.0"?>\n', '<clustat version="4.1.1">\n']
    nodes = _shown_nodes(doc)
    services = _services(doc)
    rc_member, rc_svc = 0, -1
    if not member and not service:
        c = doc["cluster"]
        out.append(f"  <cluster name={quoteattr(c['name'])} id=\"{c.get('id', 0)}\" "
                   f"generation=\"{c.get('generation', 0)}\"/>\n")
        quorate = doc["quorum"]["quorate"]
        groupmember = quorate and any(n.get("local") and n.get("rgmanager") for n in nodes)
        out.append("  <quorum " + ('quorate="1"' if quorate else 'quorate="0"\n')
                   + f' groupmember="{int(bool(groupmember))}"/>\n')
    if not service or member:
        out.append("  <nodes>\n")
        for n in nodes:
            if member and n["name"] != member:
                continue
            up = n.get("state") == "online"
            out.append(f"    <node name={quoteattr(n['name'])} state=\"{int(up)}\" "
                       f"local=\"{int(bool(n.get('local')))}\" "
                       f"estranged=\"{int(bool(n.get('estranged')))}\" "
                       f"rgmanager=\"{int(bool(n.get('rgmanager')))}\" "
                       f"rgmanager_master=\"{int(bool(n.get('rgmanager_master')))}\" "
                       f"qdisk=\"{int(bool(n.get('qdisk')))}\" "
                       f"nodeid=\"0x{n.get('nodeid', 0) & 0xffffffff:08x}\"/>\n")
            if member:
                rc_member = 0 if up else 1
        if member and not any(n["name"] == member for n in nodes):
            rc_member = NOT_FOUND
        out.append("  </nodes>\n")
    if services and (not member or service):
        out.append("  <groups>\n")
        rc_svc = 0
        found = False
        for s in services:
            if service and s["name"] != service:
                continue
            found = True
            state = s.get("state", "uninitialized")
            bits, _, names = _flags(s)
            t = int(s.get("last_transition", 0))
            out.append(f"    <group name={quoteattr(s['name'])} state=\"{STATES.get(state, 0)}\" "
                       f"state_str=\"{state}\" flags=\"{bits}\" flags_str=\"{' '.join(names)}\" "
                       f"owner={quoteattr(s.get('owner') or 'none')} "
                       f"last_owner={quoteattr(s.get('last_owner') or 'none')} "
                       f"restarts=\"{s.get('restarts', 0)}\" last_transition=\"{t}\" "
                       f"last_transition_str={quoteattr(ctime(t))}/>\n")
            if service and state not in RUNNING_STATES:
                rc_svc = STATES.get(state, 1)
        if service and not found:
            rc_svc = NOT_FOUND
        out.append("  </groups>\n")
    fencing = [f for f in doc.get("fencing", ()) if f.get("state") != "done"]
    if fencing and not member and not service:        # clusterd extension
        out.append("  <fencing>\n")
        for f in sorted(fencing, key=lambda f: f["node"]):
            out.append(f"    <fence node={quoteattr(f['node'])} state={quoteattr(f.get('state', '?'))} "
                       f"attempts=\"{f.get('attempts', 0)}\" "
                       f"last_error={quoteattr(f.get('last_error') or '')}/>\n")
        out.append("  </fencing>\n")
    out.append("</clustat>\n")
    if member and rc_member:
        return "".join(out), rc_member
    if service and rc_svc:
        return "".join(out), rc_svc if rc_svc > 0 else NOT_FOUND
    return "".join(out), 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="clustat", description="Cluster status (RHCS layout).")
    ap.add_argument("-i", dest="interval", type=int, metavar="SECONDS",
                    help="refresh every SECONDS (not with -x)")
    ap.add_argument("-I", dest="nodeid", action="store_true", help="print the local node id")
    ap.add_argument("-m", dest="member", metavar="MEMBER", help="status of one member")
    ap.add_argument("-s", dest="service", metavar="SERVICE", help="status of one service")
    ap.add_argument("-x", dest="xml", action="store_true", help="XML output")
    ap.add_argument("-Q", dest="quorate", action="store_true",
                    help="exit 0 if quorate, 1 if not (no output)")
    ap.add_argument("-l", dest="long", action="store_true", help="long service format")
    ap.add_argument("-f", dest="fast", action="store_true", help="accepted for compatibility")
    ap.add_argument("-v", dest="version", action="store_true", help="print the version")
    ap.add_argument("--format", choices=("plain", "json", "prometheus"), default="plain",
                    help="prometheus: the status as Prometheus metrics (clusterd.metrics)")
    ap.add_argument("--textfile", metavar="PATH",
                    help="write the metrics to PATH atomically (node_exporter's textfile "
                         "collector) instead of printing anything")
    ap.add_argument("--control-socket", metavar="PATH", help="control socket path")
    return ap


def main(argv: Sequence[str] | None = None, *, client: Any = None, out: TextIO | None = None,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
         tty: bool | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    out = out or sys.stdout
    if args.interval is not None and args.xml:
        ap.error("options -i and -x are mutually exclusive")
    if args.interval is not None and args.interval <= 0:
        args.interval = 1                                     # as RHCS did
    if args.version:
        out.write(f"clustat version {__version__}\n")
        return 0
    client = client or ControlClient(args.control_socket)
    is_tty = out.isatty() if tty is None else tty
    cols = shutil.get_terminal_size((80, 24)).columns if is_tty else 80
    service = service_name(args.service) if args.service else None
    while True:
        try:
            doc = client.call(p.OP_STATUS)
        except ControlError as exc:
            if not args.quorate:
                sys.stderr.write(f"clustat: {exc.message}\n")
            return 1 if args.quorate else exit_code_for(exc) or EXIT_FAILURE
        if args.quorate:
            return 0 if doc["quorum"]["quorate"] else 1
        if args.nodeid:
            out.write(f"0x{doc['local']['nodeid'] & 0xffffffff:08x}\n")
            return 0
        if args.interval and is_tty:
            out.write("\x1b[H\x1b[2J")
        if args.textfile or args.format == "prometheus":
            text = metrics.render(doc, metrics.process_figures(doc["local"].get("pid", 0)))
            if args.textfile:
                try:
                    metrics.write_textfile(args.textfile, text)
                except OSError as exc:
                    sys.stderr.write(f"clustat: cannot write {args.textfile}: "
                                     f"{exc.strerror or exc}\n")
                    return EXIT_FAILURE
                text = ""
            rc = 0
        elif args.format == "json":
            text, rc = json.dumps(doc, indent=2, sort_keys=True) + "\n", 0
        elif args.xml:
            text, rc = render_xml(doc, member=args.member, service=service)
        else:
            text, rc = render_text(doc, member=args.member, service=service, long=args.long,
                                   cols=cols, now=clock())
        out.write(text)
        out.flush()
        if not args.interval:
            return rc
        try:
            sleep(args.interval)
        except KeyboardInterrupt:
            return rc


if __name__ == "__main__":
    sys.exit(main())
