"""The page as HTML (pure; every value escaped with html.escape).

The status page is made of fragments (summary, members, services, fence history,
events) that the live stream sends again when the view changes; the full page is the
same fragments in a frame. Action forms work without JavaScript (POST /action, then a
confirmation page); with it, app.js opens ``dialog#confirm`` instead. The element ids
and data attributes are the browser tests' hooks (docs/web.md, "Page hooks"): do not
rename them.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from clusterd.web import view as v
from clusterd.web.actions import Action

SERVICE_BUTTONS = (("enable", "Enable"), ("disable", "Disable"), ("restart", "Restart"),
                   ("relocate", "Relocate"), ("freeze", "Freeze"), ("unfreeze", "Unfreeze"))
NODE_BUTTONS = (("standby", "Standby"), ("active", "Active"))


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def when(t: float | None) -> str:
    if not t:
        return "<span class=\"muted\">-</span>"
    iso = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))
    return f'<time datetime="{e(iso)}">{e(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)))}</time>'


def _csrf(csrf: str) -> str:
    return f'<input type="hidden" name="csrf" value="{e(csrf)}">'


def _buttons(kind: str, target: str, buttons: Iterable[tuple[str, str]], csrf: str) -> str:
    out = [(f'<form method="post" action="/action" class="act">{_csrf(csrf)}'
           f'<input type="hidden" name="{kind}" value="{e(target)}">')]
    for action, label in buttons:
        command = Action(action, target).command
        out.append(f'<button type="submit" name="action" value="{action}" '
                   f'data-action="{action}" data-command="{e(command)}" '
                   f'aria-label="{e(label)} {e(target)}">{label}</button>')
    return "".join(out) + "</form>"


# ------------------------------------------------------------------ fragments

def summary(view: v.View) -> str:
    out = []
    if view["down"]:
        out.append(f'<p id="daemon-down" class="alert" role="alert">{e(view["down"])}; '
                   "retrying.</p>")
    out.append(f'<h1>Cluster <span id="cluster-name">{e(view["cluster"] or "?")}</span></h1>')
    q = view["quorum"]
    if q is not None:
        out.append(f'<p id="quorum" data-quorate="{"true" if q["quorate"] else "false"}" '
                   f'class="{"ok" if q["quorate"] else "bad"}">{e(v.quorum_text(q))}</p>')
    else:
        out.append('<p id="quorum" data-quorate="false" class="bad">Quorum unknown</p>')
    qd = view["qdisk"]
    if qd:
        counted = "counted" if qd["granted"] else "not counted"
        master = f", master {qd['master']}" if qd["master"] else ", no master"
        err = f"; error: {qd['error']}" if qd["error"] else ""
        out.append(f'<p id="qdisk">Quorum disk {e(qd["device"])}: {e(qd["votes"])} votes, '
                   f'{counted}{e(master)}, score {e(qd["score"])}/{e(qd["max_score"])}'
                   f'{e(err)}</p>')
    if view["locked"]:
        out.append('<p id="locked" class="bad">Services are locked (clusvcadm -l): nothing '
                   "starts or moves until clusvcadm -u.</p>")
    return "".join(out)


def members(view: v.View, role: str, csrf: str = "") -> str:
    admin = role == "admin"
    rows = []
    for m in view["members"]:
        local = ' <span class="muted">(this node)</span>' if m["local"] else ""
        acts = _buttons("node", m["name"], NODE_BUTTONS, csrf) if admin else ""
        rows.append(
            f'<tr data-member="{e(m["name"])}" data-state="{e(m["state"])}" class="dropzone">'
            f'<th scope="row" class="name">{e(m["name"])}{local}</th>'
            f'<td class="id">{e(m["nodeid"])}</td><td class="votes">{e(m["votes"])}</td>'
            f'<td class="state">{e(m["text"])}</td>'
            f'<td class="standby">{"yes" if m["standby"] else "no"}</td>'
            f'<td class="actions">{acts}</td></tr>')
    qd = view["qdisk"]
    if qd:
        state = "online" if qd["granted"] else "offline"
        text = "Online, Quorum Disk" if qd["granted"] else "Offline, Quorum Disk"
        rows.append(
            f'<tr data-member="{e(qd["device"])}" data-state="{state}" class="qdisk">'
            f'<th scope="row" class="name">{e(qd["device"])}</th><td class="id">0</td>'
            f'<td class="votes">{e(qd["votes"])}</td><td class="state">{text}</td>'
            f'<td class="standby">-</td><td class="actions"></td></tr>')
    if not rows:
        rows.append('<tr class="empty"><td colspan="6">No members to show.</td></tr>')
    return "".join(rows)


def _candidates(cands: Sequence[Mapping[str, Any]]) -> str:
    if not cands:
        return ""
    items = []
    for c in cands:
        if "more" in c:
            why = f": {c['why']}" if c["why"] else " (cluster_info lists every node)"
            items.append(f'<li class="more">and {e(c["more"])} more nodes{e(why)}</li>')
            continue
        yes = "can run it" if c["candidate"] else "cannot run it"
        score = f" (score {c['score']})" if c["score"] is not None and c["candidate"] else ""
        why = f": {c['why']}" if c["why"] else ""
        items.append(f'<li data-node="{e(c["node"])}" data-candidate='
                     f'"{"true" if c["candidate"] else "false"}">'
                     f'{e(c["node"])} {yes}{e(score)}{e(why)}</li>')
    return f'<ul class="reasons">{"".join(items)}</ul>'


def services(view: v.View, role: str, csrf: str = "") -> str:
    admin = role == "admin"
    rows = []
    for s in view["services"]:
        drag = ('<span class="drag" aria-hidden="true" title="Drag onto a member to relocate">'
                "\u2630</span> ") if admin else ""
        flags = f' <span class="flags">[{e(", ".join(s["flags"]))}]</span>' if s["flags"] else ""
        reason = f'<div class="reason muted">{e(s["reason"])}</div>' if s["reason"] else ""
        acts = _buttons("service", s["name"], SERVICE_BUTTONS, csrf) if admin else ""
        rows.append(
            f'<tr data-service="{e(s["name"])}" data-owner="{e(s["owner"])}" '
            f'data-state="{e(s["state"])}">'
            f'<th scope="row" class="name">{drag}{e(s["name"])}</th>'
            f'<td class="owner">{e(s["owner"] or "none")}</td>'
            f'<td class="last-owner">{e(s["last_owner"] or "none")}</td>'
            f'<td class="state">{e(s["state"])}{flags}{reason}</td>'
            f'<td class="domain">{e(s["domain"] or "-")}</td>'
            f'<td class="candidates">{_candidates(s["candidates"])}</td>'
            f'<td class="actions">{acts}</td></tr>')
    if not rows:
        rows.append('<tr class="empty"><td colspan="7">No services to show.</td></tr>')
    return "".join(rows)


def _fence_outcome(f: Mapping[str, Any]) -> str:
    if f["state"] == "done":
        return "acknowledged by hand" if f["acked"] else "fenced"
    if f["state"] == "failed":
        return "failed" + (f": {f['last_error']}" if f["last_error"] else "")
    if f["state"] == "running":
        return f"running (attempt {f['attempts']})"
    return str(f["state"])


def fencing(view: v.View) -> str:
    rows = [f'<tr class="fence" data-node="{e(f["node"])}" data-state="{e(f["state"])}">'
            f'<td>{when(f["time"])}</td><th scope="row">{e(f["node"])}</th>'
            f'<td class="outcome">{e(_fence_outcome(f))}</td><td class="by">{e(f["by"])}</td>'
            f'<td class="method">{e(f["method"] or "-")}</td></tr>' for f in view["fencing"]]
    return "".join(rows) or '<tr class="empty"><td colspan="5">No fence operations.</td></tr>'


def events(items: Sequence[tuple[float, str]]) -> str:
    if not items:
        return '<li class="muted">Nothing happened while this page was watching.</li>'
    return "".join(f"<li>{when(t)} {e(text)}</li>" for t, text in items)


def member_names(view: v.View) -> list[str]:
    return [m["name"] for m in view["members"]]


def fragments(view: v.View, items: Sequence[tuple[float, str]], role: str) -> dict[str, Any]:
    """What the live stream sends (forms without the CSRF token: app.js fills it in)."""
    return {"down": view["down"], "summary": summary(view), "members": members(view, role),
            "services": services(view, role), "fencing": fencing(view),
            "events": events(items), "member_names": member_names(view)}


# ------------------------------------------------------------------ pages

def _head(title: str) -> str:
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(title)}</title>"
            '<link rel="stylesheet" href="/static/app.css">'
            '<script src="/static/app.js" defer></script></head>')


def _userbar(user: str, csrf: str) -> str:
    return (f'<nav class="userbar" aria-label="Session"><span id="user">{e(user)}</span> '
            f'<form method="post" action="/logout" class="inline">{_csrf(csrf)}'
            '<button type="submit" id="logout">Log out</button></form> '
            '<span id="live" data-connected="false" role="status">Live updates: off</span>'
            "</nav>")


def result_box(result: Mapping[str, Any] | None) -> str:
    if not result:
        return '<div id="result" role="status" aria-live="polite" tabindex="-1" hidden></div>'
    ok = "true" if result.get("ok") else "false"
    cmd = result.get("command")
    cmd_html = (f'<p class="command">Command line: <code>{e(cmd)}</code></p>' if cmd else "")
    return (f'<div id="result" data-ok="{ok}" role="status" aria-live="polite" tabindex="-1" '
            f'class="{"ok" if result.get("ok") else "bad"}">'
            f'<p class="message">{e(result.get("message", ""))}</p>{cmd_html}</div>')


def _confirm_dialog(names: Sequence[str], csrf: str) -> str:
    opts = "".join(f'<option value="{e(n)}">{e(n)}</option>' for n in names)
    return (
        '<dialog id="confirm" aria-labelledby="confirm-title">'
        f'<form method="post" action="/action" id="confirm-form">{_csrf(csrf)}'
        '<input type="hidden" name="action" value=""><input type="hidden" name="service" '
        'value="" disabled><input type="hidden" name="node" value="" disabled>'
        '<input type="hidden" name="confirmed" value="1">'
        '<h2 id="confirm-title">Confirm</h2><p id="confirm-text"></p>'
        '<p id="confirm-member-row"><label for="confirm-member">Member</label> '
        f'<select name="member" id="confirm-member"><option value="">any member</option>{opts}'
        '</select></p>'
        '<p>Command line: <code id="confirm-command"></code></p>'
        '<p class="buttons"><button type="submit" id="confirm-ok">OK</button> '
        '<button type="button" id="confirm-cancel">Cancel</button></p></form></dialog>')


def page(view: v.View, items: Sequence[tuple[float, str]], *, user: str, role: str,
         csrf: str, result: Mapping[str, Any] | None = None) -> str:
    admin = role == "admin"
    act_head = "<th scope=\"col\">Actions</th>"
    return (
        _head(f"clusterd: {view['cluster'] or 'cluster status'}")
        + f'<body data-role="{e(role)}" data-csrf="{e(csrf)}">'
        + '<a class="skip" href="#services-h">Skip to services</a>'
        + f"<header>{_userbar(user, csrf)}<div id=\"summary\">{summary(view)}</div></header>"
        + "<main>" + result_box(result)
        + '<section aria-labelledby="members-h"><h2 id="members-h">Members</h2>'
        + '<div class="scroll"><table id="members"><thead><tr><th scope="col">Member</th>'
        + '<th scope="col">ID</th><th scope="col">Votes</th><th scope="col">State</th>'
        + f'<th scope="col">Standby</th>{act_head if admin else "<td></td>"}</tr></thead>'
        + f'<tbody id="members-body">{members(view, role, csrf)}</tbody></table></div>'
        + "</section>"
        + '<section aria-labelledby="services-h"><h2 id="services-h">Services</h2>'
        + ('<p class="hint muted">Drag a service by its handle onto a member to relocate it, '
           "or use its Relocate button.</p>" if admin else "")
        + '<div class="scroll"><table id="services"><thead><tr><th scope="col">Service</th>'
        + '<th scope="col">Owner</th><th scope="col">Last owner</th><th scope="col">State</th>'
        + '<th scope="col">Failover domain</th><th scope="col">Placement</th>'
        + f'{act_head if admin else "<td></td>"}</tr></thead>'
        + f'<tbody id="services-body">{services(view, role, csrf)}</tbody></table></div>'
        + "</section>"
        + '<section aria-labelledby="fence-h"><h2 id="fence-h">Fence history</h2>'
        + '<div class="scroll"><table id="fence-history"><thead><tr><th scope="col">Time</th>'
        + '<th scope="col">Node</th><th scope="col">Outcome</th><th scope="col">By</th>'
        + '<th scope="col">Method</th></tr></thead>'
        + f'<tbody id="fence-body">{fencing(view)}</tbody></table></div></section>'
        + '<section aria-labelledby="events-h"><h2 id="events-h">Recent events</h2>'
        + f'<ul id="events">{events(items)}</ul></section>'
        + "</main>"
        + (_confirm_dialog(member_names(view), csrf) if admin else "")
        + "</body></html>\n")


def login_page(csrf: str, message: str = "", username: str = "") -> str:
    msg = f'<p id="login-error" class="alert" role="alert">{e(message)}</p>' if message else ""
    return (
        _head("clusterd: log in") + "<body><main class=\"login\">"
        + "<h1>clusterd</h1>" + msg
        + f'<form id="login" method="post" action="/login">{_csrf(csrf)}'
        + '<p><label for="username">User name</label>'
        + f'<input id="username" name="username" value="{e(username)}" autocomplete="username" '
        + 'autocapitalize="none" spellcheck="false" required autofocus></p>'
        + '<p><label for="password">Password</label>'
        + '<input id="password" name="password" type="password" '
        + 'autocomplete="current-password" required></p>'
        + '<p><button type="submit" id="login-submit">Log in</button></p></form>'
        + "</main></body></html>\n")


def confirm_page(action: Action, names: Sequence[str], *, user: str, csrf: str) -> str:
    """The confirmation without JavaScript (app.js uses dialog#confirm instead)."""
    kind = "node" if action.name in ("standby", "active") else "service"
    member = ""
    if action.name in ("enable", "relocate"):
        opts = "".join(f'<option value="{e(n)}"{" selected" if n == action.member else ""}>'
                       f"{e(n)}</option>" for n in names)
        member = ('<p><label for="member">Member</label> <select name="member" id="member">'
                  f'<option value="">any member</option>{opts}</select></p>')
    return (
        _head("clusterd: confirm") + "<body><header>"
        + f'<nav class="userbar"><span id="user">{e(user)}</span></nav></header><main>'
        + '<section id="confirm-page" aria-labelledby="confirm-page-h">'
        + f'<h1 id="confirm-page-h">{e(action.sentence)}</h1>'
        + f'<form method="post" action="/action">{_csrf(csrf)}'
        + f'<input type="hidden" name="action" value="{e(action.name)}">'
        + f'<input type="hidden" name="{kind}" value="{e(action.target)}">'
        + '<input type="hidden" name="confirmed" value="1">' + member
        + f"<p>Command line: <code>{e(action.command)}</code></p>"
        + '<p class="buttons"><button type="submit">OK</button> <a href="/">Cancel</a></p>'
        + "</form></section></main></body></html>\n")


def message_page(title: str, message: str, *, back: str = "/") -> str:
    return (_head(f"clusterd: {title}") + "<body><main>"
            + f'<h1>{e(title)}</h1><p id="message" class="alert" role="alert">{e(message)}</p>'
            + f'<p><a href="{e(back)}">Back</a></p></main></body></html>\n')
