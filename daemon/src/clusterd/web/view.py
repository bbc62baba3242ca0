"""What the page shows, taken from the status document; and the events between two views.

Pure. :func:`project` keeps only what the page renders (the status document also carries
packet counters and round-trip times that change on every read; a view changes only when
something a person would notice did), so two views compare equal when the page would
look the same. :func:`events` words the changes between two views as the page's
"Recent events" list does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

View = dict[str, Any]
FENCE_HISTORY = 50


def member_state_text(node: Mapping[str, Any]) -> str:
    """As clustat words a member's status, without the local/rgmanager flags."""
    parts = ["Online" if node.get("state") == "online" else "Offline"]
    if node.get("estranged"):
        parts.append("Estranged")
    if node.get("standby"):
        parts.append("Standby")
    return ", ".join(parts)


def _members(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for n in doc.get("nodes", ()):
        if n.get("estranged") and n.get("state") != "online":
            continue       # clustat: down and not in cluster.conf is not shown
        out.append({"name": str(n.get("name", "?")), "nodeid": n.get("nodeid", 0),
                    "state": str(n.get("state", "offline")), "text": member_state_text(n),
                    "votes": n.get("votes", 1), "standby": bool(n.get("standby")),
                    "local": bool(n.get("local"))})
    return sorted(out, key=lambda m: (m["nodeid"], m["name"]))


def _qdisk(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    q = doc.get("qdisk")
    if not q:
        return None
    return {"device": str(q.get("device") or q.get("name") or "qdisk"),
            "label": q.get("label") or "", "votes": q.get("votes", 0),
            "granted": bool(q.get("granted")), "master": q.get("master") or "",
            "state": q.get("state") or "", "score": q.get("score", 0),
            "max_score": q.get("max_score", 0), "min_score": q.get("min_score", 0),
            "error": q.get("error") or ""}


def _candidates(cands: Mapping[str, Any] | None, name: str) -> list[dict[str, Any]]:
    rows = (cands or {}).get(name) or ()
    out = []
    for c in rows:
        if isinstance(c, Mapping) and isinstance(c.get("more"), int):
            # nodes left out of the reply (their reasons grouped, or none)
            out.append({"more": c["more"], "why": str(c.get("why") or "")})
        elif isinstance(c, Mapping):
            out.append({"node": str(c.get("node", "?")), "candidate": bool(c.get("candidate")),
                        "score": c.get("score"), "why": str(c.get("why") or "")})
    return out


def _services(doc: Mapping[str, Any], cands: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for s in doc.get("services", ()):
        name = str(s.get("name", "?"))
        out.append({"name": name, "state": str(s.get("state", "uninitialized")),
                    "owner": s.get("owner") or "", "last_owner": s.get("last_owner") or "",
                    "domain": s.get("domain") or "", "flags": list(s.get("flags") or ()),
                    "reason": str(s.get("reason") or ""), "restarts": s.get("restarts", 0),
                    "candidates": _candidates(cands, name)})
    return sorted(out, key=lambda s: s["name"])


def fence_entry(f: Mapping[str, Any]) -> dict[str, Any]:
    by = f.get("executor") or ", ".join(str(r) for r in f.get("requesters") or ()) \
        or f.get("origin") or ""
    return {"node": str(f.get("node", "?")), "op_id": str(f.get("op_id", "")),
            "state": str(f.get("state", "?")), "acked": bool(f.get("acked")),
            "time": f.get("finished") or f.get("since") or 0, "by": str(by),
            "method": f.get("method") or "", "attempts": f.get("attempts", 0),
            "last_error": f.get("last_error") or ""}


def merge_fencing(past: Sequence[Mapping[str, Any]],
                  doc_fencing: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Fence operations, newest first: the document's (one per node, its latest) over the
    ones seen before (by op_id), the last :data:`FENCE_HISTORY`."""
    by_id: dict[str, dict[str, Any]] = {f"{e['node']}/{e['op_id']}": dict(e) for e in past}
    for f in doc_fencing:
        e = fence_entry(f)
        by_id[f"{e['node']}/{e['op_id']}"] = e
    return sorted(by_id.values(), key=lambda e: (-(e["time"] or 0), e["node"]))[:FENCE_HISTORY]


def project(doc: Mapping[str, Any], candidates: Mapping[str, Any] | None = None,
            past_fencing: Sequence[Mapping[str, Any]] = ()) -> View:
    quorum = doc.get("quorum", {})
    return {
        "down": None,
        "cluster": str(doc.get("cluster", {}).get("name", "?")),
        "local": str(doc.get("local", {}).get("name", "?")),
        "quorum": {"quorate": bool(quorum.get("quorate")), "votes": quorum.get("votes", 0),
                   "expected": quorum.get("expected_votes", 0),
                   "needed": quorum.get("quorum", 0)},
        "locked": bool(doc.get("services_locked")),
        "members": _members(doc),
        "qdisk": _qdisk(doc),
        "services": _services(doc, candidates),
        "fencing": merge_fencing(past_fencing, doc.get("fencing", ())),
    }


def down(message: str, past: View | None = None) -> View:
    """The view while clusterd cannot be asked (the fence history seen so far kept)."""
    return {"down": message, "cluster": (past or {}).get("cluster", ""), "local": "",
            "quorum": None, "locked": False, "members": [], "qdisk": None, "services": [],
            "fencing": (past or {}).get("fencing", [])}


def quorum_text(q: Mapping[str, Any]) -> str:
    return (f"{'Quorate' if q['quorate'] else 'Inquorate'}: {q['votes']} of "
            f"{q['expected']} votes, {q['needed']} needed")


def _fence_words(e: Mapping[str, Any]) -> str:
    if e["state"] == "done":
        how = "acknowledged by hand" if e["acked"] else f"method {e['method'] or '?'}"
        return f"{e['node']} was fenced ({how})"
    if e["state"] == "failed":
        return f"Fencing {e['node']} failed" + (f": {e['last_error']}" if e["last_error"] else "")
    return f"Fencing {e['node']}: {e['state']}"


def events(old: View | None, new: View) -> list[str]:
    """What changed from ``old`` to ``new``, one sentence each (none for the first view)."""
    if old is None:
        return []
    out: list[str] = []
    if old["down"] != new["down"]:
        if new["down"]:
            out.append(f"clusterd stopped answering: {new['down']}")
            return out
        out.append("clusterd answers again")
        if old["quorum"] is None:
            return out
    if old["quorum"] and new["quorum"] and old["quorum"] != new["quorum"]:
        if old["quorum"]["quorate"] != new["quorum"]["quorate"]:
            word = "Quorum regained" if new["quorum"]["quorate"] else "Quorum lost"
            out.append(f"{word}: {quorum_text(new['quorum']).split(': ', 1)[1]}")
        else:
            out.append(f"Votes: {quorum_text(new['quorum'])}")
    old_m = {m["name"]: m for m in old["members"]}
    for m in new["members"]:
        was = old_m.get(m["name"])
        if was is None:
            out.append(f"{m['name']} joined the listing: {m['text']}")
        elif was["text"] != m["text"]:
            out.append(f"{m['name']} is now {m['text']}")
    oq, nq = old.get("qdisk"), new.get("qdisk")
    if oq and nq and oq["granted"] != nq["granted"]:
        out.append(f"Quorum disk {nq['device']}: votes {'counted' if nq['granted'] else 'not counted'}")
    old_s = {s["name"]: s for s in old["services"]}
    for s in new["services"]:
        was = old_s.get(s["name"])
        if was is None:
            continue
        if was["owner"] != s["owner"] and s["owner"] and was["owner"]:
            out.append(f"{s['name']} moved from {was['owner']} to {s['owner']} ({s['state']})")
        elif was["owner"] != s["owner"] or was["state"] != s["state"]:
            on = f" on {s['owner']}" if s["owner"] else ""
            out.append(f"{s['name']} is {s['state']}{on}")
    old_f = {(e["node"], e["op_id"]): e for e in old["fencing"]}
    for e in reversed(new["fencing"]):
        was = old_f.get((e["node"], e["op_id"]))
        if was is None or was["state"] != e["state"]:
            out.append(_fence_words(e))
    return out
