"""The web service over HTTPS against a fake clusterd: login, sessions, CSRF, roles,
actions, the live stream, /metrics, escaping and headers."""

from __future__ import annotations

import asyncio
import json
from html import unescape
from typing import Any

from clusterd.control import protocol as p
from webfake import CANDIDATES, harness, run, status_doc, wait_for

ADMIN_AS = {"user": "alice", "role": "admin"}


def test_login_ok_shows_the_status_page(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            resp = await h.login()
            assert resp.status == 303 and resp.headers["Location"] == "/"
            cookie = resp.headers["Set-Cookie"]
            assert "clusterd_session=" in cookie and "Secure" in cookie
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            text = await h.page()
            assert '<span id="cluster-name">alpha</span>' in text
            assert 'id="quorum" data-quorate="true"' in text
            assert "Quorate: 3 of 3 votes, 2 needed" in text
            assert '<span id="user">alice (admin)</span>' in text
            assert 'tr data-member="node2" data-state="online" class="dropzone"' in text
            assert '<td class="state">Online</td>' in text
            assert 'data-service="service:web" data-owner="node1" data-state="started"' in text
            assert 'class="domain">d1<' in text
            assert "node3 cannot run it: not in restricted domain d1" in text
            assert 'button type="submit" name="action" value="relocate"' in text
            assert 'data-command="clusvcadm -r web"' in text
            # the page's reads went out for alice
            assert h.fake.requests[0] == {"v": 1, "op": "status", "args": {}, "as": ADMIN_AS}
    run(scenario())


def test_wrong_password_then_rate_limit_with_the_wait(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            for _ in range(5):
                resp = await h.login("alice", "nope")
                assert resp.status == 401
                assert 'id="login-error"' in await resp.text()
            h.clock.now += 10
            resp = await h.login("alice", "alice-pw")       # right, but refused unchecked
            assert resp.status == 429
            assert "Too many failed logins for alice; wait 290 s" in await resp.text()
            assert resp.headers["Retry-After"] == "290"
            h.clock.now += 291
            assert (await h.login("alice")).status == 303
    run(scenario())


def test_login_without_the_login_token_is_refused(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            resp = await h.client.post("/login", data={"username": "alice",
                                                       "password": "alice-pw"},
                                       headers={"Origin": h.origin}, allow_redirects=False)
            assert resp.status == 403
            assert "form token (CSRF)" in await resp.text()
    run(scenario())


def test_idle_and_absolute_session_expiry(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files, idle=100, max_age=250) as h:
            await h.login()
            h.clock.now += 101
            resp = await h.client.get("/", allow_redirects=False)
            assert resp.status == 303 and resp.headers["Location"] == "/login?expired=1"
            login = await h.client.get("/login?expired=1")
            assert "Your session expired; log in again." in await login.text()
            # absolute: active every 90 s, still ends 250 s after login
            await h.login()
            for _ in range(2):
                h.clock.now += 90
                assert (await h.client.get("/", allow_redirects=False)).status == 200
            h.clock.now += 90
            resp = await h.client.get("/", allow_redirects=False)
            assert resp.headers["Location"] == "/login?expired=1"
    run(scenario())


def test_forged_post_without_or_with_a_wrong_csrf_token_changes_nothing(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            await h.login()
            for token in ("", "not-the-token"):
                resp = await h.action(token=token, json_reply=False, action="restart",
                                      service="service:web", confirmed="1")
                assert resp.status == 403
                assert ("The request was refused: it did not carry this session's form "
                        "token (CSRF). Reload the page and try again.") in unescape(
                            await resp.text())
            assert h.fake.actions() == []
    run(scenario())


def test_origin_mismatch_is_refused(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            await h.login()
            resp = await h.action(origin="https://evil.example", action="restart",
                                  service="service:web")
            assert resp.status == 403
            assert "came from another site" in (await resp.json())["message"]
            assert h.fake.actions() == []
            # and a login posted from another site
            resp = await h.login(origin="https://evil.example:8084")
            assert resp.status == 403
    run(scenario())


def test_viewer_sees_no_buttons_and_an_action_is_refused(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            await h.login("victor")
            text = await h.page()
            assert "data-action=" not in text and 'class="drag"' not in text
            assert '<span id="user">victor (viewer)</span>' in text
            resp = await h.action(json_reply=False, action="disable", service="service:web",
                                  confirmed="1")
            assert resp.status == 403
            assert ("Only administrators can change the cluster; you are logged in as "
                    "victor (viewer)") in await resp.text()
            assert h.fake.actions() == []
            assert all(r["as"] == {"user": "victor", "role": "viewer"}
                       for r in h.fake.requests)
    run(scenario())


def test_admin_relocate_forwards_op_args_and_as_and_shows_the_result(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            await h.login()
            h.fake.replies["svc.relocate"] = {
                "code": 0, "message": "Member node2 trying to relocate service:web...Success",
                "detail": "service:web is now running on node2", "owner": "node2"}
            resp = await h.action(action="relocate", service="service:web", member="node2")
            body = await resp.json()
            assert resp.status == 200 and body["ok"] is True
            assert body["command"] == "clusvcadm -r web -m node2"
            assert body["message"] == ("Member node2 trying to relocate service:web...Success\n"
                                       "service:web is now running on node2")
            assert h.fake.actions() == [{"v": 1, "op": "svc.relocate", "as": ADMIN_AS,
                                         "args": {"service": "service:web",
                                                  "member": "node2"}}]
    run(scenario())


def test_form_action_without_js_confirms_then_redirects_with_the_result(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            await h.login()
            token = (await h.page()).split('name="csrf" value="')[1].split('"')[0]
            resp = await h.action(token=token, json_reply=False, action="standby",
                                  node="node2")
            assert resp.status == 200          # the confirmation page, nothing sent yet
            text = await resp.text()
            assert "Put in standby node2?" in text and "cluster_admin" in text
            assert h.fake.actions() == []
            resp = await h.action(token=token, json_reply=False, action="standby",
                                  node="node2", confirmed="1")
            assert resp.status == 303 and resp.headers["Location"] == "/"
            assert h.fake.actions()[0]["op"] == "node.standby"
            assert h.fake.actions()[0]["args"] == {"node": "node2"}
            text = await h.page()
            assert 'id="result" data-ok="true"' in text and "Success" in text
            assert "{&quot;v&quot;: 1, &quot;op&quot;: &quot;node&quot;" in text
            assert 'id="result" role="status"' in await h.page()   # shown once
    run(scenario())


def test_daemon_refusal_is_shown_verbatim(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            await h.login()
            h.fake.replies["svc.enable"] = (p.E_NO_QUORUM, "no quorum: 1 of 3 votes <here>")
            resp = await h.action(action="enable", service="service:web", member="node3")
            body = await resp.json()
            assert body == {"ok": False, "message": "no quorum: 1 of 3 votes <here>",
                            "code": "no_quorum", "command": "clusvcadm -e web -m node3",
                            "action": "enable", "target": "service:web"}
            h.fake.replies["svc.relocate"] = {"code": -13, "message": "Failed; service "
                                              "running on original owner"}
            body = await (await h.action(action="relocate", service="service:web")).json()
            assert body["ok"] is False and body["message"].startswith("Failed; service")
    run(scenario())


def test_bad_form_input_is_a_400_with_a_clear_message(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            await h.login()
            cases = [({"action": "explode", "service": "service:web"}, "Unknown action"),
                     ({"action": "restart"}, "names no service"),
                     ({"action": "restart", "service": "service:\x1b[2Jweb"},
                      "control characters"),
                     ({"action": "standby", "node": "n\n2"}, "control characters")]
            for form, words in cases:
                resp = await h.action(**form)
                assert resp.status == 400, form
                assert words in (await resp.json())["message"]
            assert h.fake.actions() == []
    run(scenario())


def test_daemon_down_page_then_recovery(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files, start_daemon=False) as h:
            await h.login()
            text = await h.page()
            assert "clusterd is not running on this node (control socket " in text
            assert f"{h.fake.path}: no such file" in text and 'id="daemon-down"' in text
            resp = await h.action(action="restart", service="service:web")
            body = await resp.json()
            assert body["ok"] is False and body["code"] == p.E_NOT_RUNNING
            await h.fake.start()
            h.clock.now += 2                 # past the on-demand view's freshness
            assert 'id="daemon-down"' not in await h.page()
    run(scenario())


async def _sse_events(resp: Any, want: int, deadline: float = 5.0) -> list[tuple[str, Any]]:
    """The next ``want`` named events of a stream (comments and retry lines skipped)."""
    out: list[tuple[str, Any]] = []
    name = ""
    while len(out) < want:
        line = (await asyncio.wait_for(resp.content.readline(), deadline)).decode()
        if line.startswith("event: "):
            name = line[7:].strip()
        elif line.startswith("data: "):
            out.append((name, json.loads(line[6:])))
    return out


def test_sse_sends_the_state_then_only_changes_and_stops_polling_when_closed(tmp_path,
                                                                          cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            await h.login()
            hub = h.service.hub
            resp = await h.client.get("/events")
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            [(name, first)] = await _sse_events(resp, 1)
            assert name == "status" and 'data-owner="node1"' in first["services"]
            assert first["member_names"] == ["node1", "node2", "node3"]
            polls = h.fake.count("status")
            await wait_for(lambda: h.fake.count("status") >= polls + 3)   # polling, no news
            assert h.fake.count("svc.candidates") == 1
            version = hub.version
            # packet counters change on every read: not a change of the page
            h.fake.status = status_doc(wire={"accepted": 99})
            await wait_for(lambda: h.fake.count("status") >= polls + 6)
            assert hub.version == version
            # a relocation: sent, and noted as an event
            doc = status_doc()
            doc["services"][0].update(owner="node2", last_owner="node1")
            doc["nodes"][2]["state"] = "offline"
            h.fake.status = doc
            [(name, second)] = await _sse_events(resp, 1)
            assert 'data-owner="node2"' in second["services"]
            assert "service:web moved from node1 to node2" in second["events"]
            assert "node3 is now Offline" in second["events"]
            assert h.fake.count("svc.candidates") == 2
            assert all("as" not in r for r in h.fake.requests[1:])   # the shared poller's
            resp.close()
            await wait_for(lambda: not hub.subscribers and not hub.polling)
            idle = h.fake.count("status")
            await asyncio.sleep(0.1)
            assert h.fake.count("status") == idle        # nobody watching: no reads
    run(scenario())


def test_sse_client_limit_is_a_503(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files, max_clients=1) as h:
            await h.login()
            first = await h.client.get("/events")
            await _sse_events(first, 1)
            second = await h.client.get("/events")
            assert second.status == 503
            assert "Too many live views" in await second.text()
            first.close()
    run(scenario())


def test_sse_with_an_expired_session_says_so(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files, idle=100) as h:
            await h.login()
            h.clock.now += 101
            resp = await h.client.get("/events")
            assert await _sse_events(resp, 1) == [("expired", "/login?expired=1")]
    run(scenario())


def test_older_daemon_without_candidates_shows_no_reasons(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            h.fake.candidates = None
            await h.login()
            text = await h.page()
            assert '<td class="candidates"></td>' in text and "Refused" not in text
            assert h.fake.count("svc.candidates") == 1
            # a daemon whose coordinator has not placed yet: asked again on the next read
            h.fake.candidates = {"services": {}, "ready": False}
            h.fake.status = status_doc(local={"name": "node1", "nodeid": 1, "pid": 9})
            h.clock.now += 2
            await h.page()
            h.clock.now += 2
            await h.page()
            assert h.fake.count("svc.candidates") == 3
    run(scenario())


def test_candidates_read_in_pages_with_the_rest_summarised(tmp_path, cert_files):
    """A large cluster's explainer comes in pages (svc.candidates with start, brief):
    the page reads them all and shows the nodes left out with their grouped reasons."""
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            doc = status_doc()
            doc["services"].append({"name": "service:db", "state": "stopped", "owner": None,
                                    "last_owner": None, "flags": [], "restarts": 0,
                                    "domain": "", "last_transition": 100})
            h.fake.status = doc
            h.fake.candidates = [
                {"services": {"service:web": CANDIDATES["services"]["service:web"]},
                 "ready": True, "next": 1, "total": 2},
                {"services": {"service:db": [{"node": "node2", "candidate": False,
                                              "score": "illegal", "why": "offline"}]},
                 "more": {"service:db": 297}, "rest": {"service:db": "offline: node4, "
                                                       "node5, node6, node7 and 293 more"},
                 "ready": True, "next": None, "total": 2}]
            await h.login()
            text = await h.page()
            reads = [r for r in h.fake.requests if r["op"] == "svc.candidates"]
            assert [r.get("args", {}) for r in reads] == [{"brief": True},
                                                          {"brief": True, "start": 1}]
            assert "not in restricted domain d1" in text          # page 1
            assert "node2 cannot run it: offline" in text          # page 2
            assert ("and 297 more nodes: offline: node4, node5, node6, node7 and 293 more"
                    in text)
    run(scenario())


def test_an_older_daemon_without_paging_answers_in_one_page(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            real = h.fake._answer

            def older(req):
                if req.get("op") == "svc.candidates" and req.get("args"):
                    return p.encode_error(p.E_BAD_ARGS, "unknown argument 'brief'")
                return real(req)
            h.fake._answer = older
            await h.login()
            text = await h.page()
            assert "not in restricted domain d1" in text
            assert h.fake.count("svc.candidates") == 2     # refused with args, then whole
    run(scenario())


def test_metrics_with_token_session_or_nothing(tmp_path, cert_files):
    token = "t0ken-" + "x" * 20
    async def scenario():
        async with harness(tmp_path, cert_files, metrics_token=token) as h:
            assert (await h.client.get("/metrics")).status == 401
            bad = await h.client.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert bad.status == 401 and "Bearer" in bad.headers["WWW-Authenticate"]
            ok = await h.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert ok.status == 200 and ok.headers["Content-Type"].startswith("text/plain")
            text = await ok.text()
            assert 'clusterd_service_owner_info{service="service:web",owner="node1"} 1' in text
            assert "clusterd_quorate 1" in text
            assert "as" not in h.fake.requests[-1]
            await h.login("victor")
            assert (await h.client.get("/metrics")).status == 200
            assert h.fake.requests[-1]["as"] == {"user": "victor", "role": "viewer"}
    run(scenario())


def test_hostile_service_name_is_escaped_everywhere(tmp_path, cert_files):
    hostile = 'service:<script>alert("x")</script>&"'
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            doc = status_doc()
            doc["services"][0]["name"] = hostile
            doc["services"][0]["reason"] = "<img src=x onerror=alert(1)>"
            doc["cluster"]["name"] = "<b>alpha</b>"
            h.fake.status = doc
            h.fake.candidates = {"services": {hostile: [{"node": "<i>n</i>",
                                                         "candidate": False, "why": "<u>"}]}}
            await h.login()
            text = await h.page()
            assert "<script>alert" not in text and "<img" not in text and "<b>alpha" not in text
            assert "<i>n</i>" not in text and "<u>" not in text
            assert "service:&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&quot;" in text
            resp = await h.client.get("/events")
            [(_, frag)] = await _sse_events(resp, 1)
            assert "<script>" not in frag["services"] and "&lt;script&gt;" in frag["services"]
            resp.close()
    run(scenario())


def test_security_headers_and_body_limit(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            for path in ("/login", "/static/app.js", "/static/app.css"):
                resp = await h.client.get(path)
                assert resp.status == 200, path
                csp = resp.headers["Content-Security-Policy"]
                assert csp.startswith("default-src 'self'") and "unsafe-inline" not in csp
                assert resp.headers["X-Frame-Options"] == "DENY"
                assert resp.headers["Referrer-Policy"] == "same-origin"
                assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
                assert resp.headers["Server"] == "clusterd-web"
            page = await (await h.client.get("/login")).text()
            assert "<script>" not in page and "style=" not in page   # no inline code
            await h.login()
            big = await h.client.post("/action", data={"action": "x" * 100_000},
                                      headers={"Origin": h.origin})
            assert big.status == 413
            assert h.fake.actions() == []
    run(scenario())


def test_logout_ends_the_session(tmp_path, cert_files):
    async def scenario():
        async with harness(tmp_path, cert_files) as h:
            await h.login()
            token = (await h.page()).split('name="csrf" value="')[1].split('"')[0]
            resp = await h.client.post("/logout", data={"csrf": token},
                                       headers={"Origin": h.origin}, allow_redirects=False)
            assert resp.status == 303 and resp.headers["Location"] == "/login"
            resp = await h.client.get("/", allow_redirects=False)
            assert resp.headers["Location"] == "/login"
            assert len(h.service.sessions) == 0
    run(scenario())
