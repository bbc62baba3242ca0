"""The aiohttp application: routes, sessions, CSRF and Origin checks, the live stream.

Routes (docs/web.md): GET/POST /login, POST /logout, GET / (status page), GET /events
(Server-Sent Events), POST /action, GET /metrics, GET /static/*. Every POST carries the
session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``) and an Origin (or
Referer) of this very site; every login, failed login, logout and action is logged with
the user and the client address (never a password). The web service only checks that a
request is well formed and who asks; what may happen is the daemon's decision, shown as
it words it.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from yarl import URL

from clusterd import metrics
from clusterd.control import protocol as p
from clusterd.errors import ControlError
from clusterd.web import actions, render
from clusterd.web.auth import Authenticator
from clusterd.web.config import WebConfig
from clusterd.web.control import ActingFor, AsyncControl
from clusterd.web.hub import Hub
from clusterd.web.sessions import LoginLimiter, Session, SessionStore
from clusterd.web.users import UsersFileError

logger = logging.getLogger("clusterd.web")

SESSION_COOKIE = "clusterd_session"
LOGIN_COOKIE = "clusterd_login"
MAX_BODY = 64 * 1024
KEEPALIVE = 15.0
STATIC = Path(__file__).parent / "static"
CSRF_REFUSAL = ("The request was refused: it did not carry this session's form token "
                "(CSRF). Reload the page and try again.")
EXPIRED_TEXT = "Your session expired; log in again."
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=31536000",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _redirect(location: str) -> web.Response:
    """303 See Other as a response (to set cookies on; raising is for the plain ones)."""
    return web.Response(status=303, headers={"Location": location})


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class WebService:
    """The handlers and the state they share (sessions, limiter, the live view)."""

    def __init__(self, conf: WebConfig, authenticator: Authenticator, *,
                 control: AsyncControl | None = None, clock: Callable[[], float] = time.time,
                 interval: float = 0.5, max_clients: int = 64) -> None:
        self.conf = conf
        self.auth = authenticator
        self.control = control or AsyncControl(conf.control_socket)
        self.clock = clock
        self.sessions = SessionStore(conf.session_idle, conf.session_max, clock)
        self.limiter = LoginLimiter(clock)
        self.hub = Hub(self.control, interval=interval, max_clients=max_clients, clock=clock,
                       render=render.fragments)

    # ------------------------------------------------------------- plumbing
    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/", self.index)
        app.router.add_get("/login", self.login_form)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/events", self.events)
        app.router.add_post("/action", self.action)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_static("/static/", STATIC)
        app.on_response_prepare.append(self._headers)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _shutdown(self, app: web.Application) -> None:
        await self.hub.close()

    @staticmethod
    async def _headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers["Server"] = "clusterd-web"     # not the library's version
        if request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-cache")
        else:
            response.headers.setdefault("Cache-Control", "no-store")

    @staticmethod
    def _html(text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, status=status, content_type="text/html",
                            charset="utf-8")

    def _refuse(self, request: web.Request, status: int, message: str,
                title: str = "Refused") -> web.Response:
        if _wants_json(request):
            return web.json_response({"ok": False, "message": message}, status=status)
        return self._html(render.message_page(title, message), status)

    @staticmethod
    def _address(request: web.Request) -> str:
        return request.remote or "?"

    def _session(self, request: web.Request, touch: bool = True) -> tuple[Session | None, bool]:
        return self.sessions.lookup(request.cookies.get(SESSION_COOKIE), touch=touch)

    def _to_login(self, request: web.Request, expired: bool) -> web.Response:
        target = "/login?expired=1" if expired else "/login"
        if _wants_json(request):
            return web.json_response({"ok": False, "message": EXPIRED_TEXT if expired else
                                      "Log in first.", "login": target}, status=401)
        raise web.HTTPSeeOther(target)

    @staticmethod
    def _origin_problem(request: web.Request) -> str | None:
        """Why this POST does not come from a page of this site (None: it does)."""
        claimed = request.headers.get("Origin") or request.headers.get("Referer")
        if not claimed or claimed == "null":
            return ("The request was refused: it carried neither an Origin nor a Referer "
                    "header, so it cannot be told apart from a forged one.")
        try:
            got = URL(claimed)
            ours = URL(f"{request.scheme}://{request.host}")
            same = (got.scheme, (got.host or "").lower(), got.port) == \
                (ours.scheme, (ours.host or "").lower(), ours.port)
        except ValueError:
            same = False
        if not same:
            return (f"The request was refused: it came from another site ({claimed[:100]}), "
                    f"not from {request.scheme}://{request.host}.")
        return None

    # ------------------------------------------------------------- login
    def _login_page(self, request: web.Request, message: str = "", status: int = 200,
                    username: str = "") -> web.Response:
        token = request.cookies.get(LOGIN_COOKIE) or ""
        fresh = len(token) < 20
        if fresh:
            token = secrets.token_urlsafe(32)
        resp = self._html(render.login_page(token, message, username), status)
        if fresh:
            resp.set_cookie(LOGIN_COOKIE, token, path="/login", secure=True, httponly=True,
                            samesite="Strict", max_age=3600)
        return resp

    async def login_form(self, request: web.Request) -> web.Response:
        session, _ = self._session(request, touch=False)
        if session is not None:
            raise web.HTTPSeeOther("/")
        message = EXPIRED_TEXT if request.query.get("expired") == "1" else ""
        return self._login_page(request, message)

    async def login(self, request: web.Request) -> web.Response:
        address = self._address(request)
        problem = self._origin_problem(request)
        if problem:
            logger.warning("login refused from %s: %s", address, problem)
            return self._login_page(request, problem, 403)
        form = await request.post()
        token = str(form.get("csrf", ""))
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        if not token or not cookie or not _same(token, cookie):
            logger.warning("login refused from %s: no or wrong login form token", address)
            return self._login_page(request, CSRF_REFUSAL, 403)
        user = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        if not user or not password:
            return self._login_page(request, "Give a user name and a password.", 400, user)
        if len(user) > 64 or not user.isprintable() or ":" in user:
            return self._login_page(request, "That is not a user name.", 400)
        wait = self.limiter.wait(user, address)
        if wait > 0:
            logger.warning("login by %s from %s refused: too many failed logins", user, address)
            resp = self._login_page(request, f"Too many failed logins for {user}; wait "
                                    f"{math.ceil(wait)} s", 429, user)
            resp.headers["Retry-After"] = str(math.ceil(wait))
            return resp
        try:
            role = await asyncio.get_running_loop().run_in_executor(
                None, self.auth.authenticate, user, password)
        except (UsersFileError, OSError) as exc:
            logger.error("login by %s from %s: cannot check the password: %s", user,
                         address, exc)
            return self._login_page(request, "Logins cannot be checked right now (the users "
                                    "file cannot be read); see the journal of "
                                    "clusterd-web.", 503, user)
        if role not in ("admin", "viewer"):
            self.limiter.failed(user, address)
            logger.warning("failed login by %s from %s", user, address)
            return self._login_page(request, "Wrong user name or password.", 401, user)
        self.limiter.succeeded(user, address)
        session = self.sessions.create(user, role, address)
        logger.info("login by %s (%s) from %s", user, role, address)
        resp = _redirect("/")
        resp.set_cookie(SESSION_COOKIE, session.id, path="/", secure=True, httponly=True,
                        samesite="Strict")
        resp.del_cookie(LOGIN_COOKIE, path="/login")
        return resp

    def _csrf_ok(self, session: Session, request: web.Request, form: Any) -> bool:
        token = request.headers.get("X-CSRF-Token") or str(form.get("csrf", "") if form else "")
        return bool(token) and _same(token, session.csrf)

    async def logout(self, request: web.Request) -> web.Response:
        session, _ = self._session(request, touch=False)
        if session is None:
            raise web.HTTPSeeOther("/login")
        problem = self._origin_problem(request)
        form = await request.post()
        if problem or not self._csrf_ok(session, request, form):
            return self._refuse(request, 403, problem or CSRF_REFUSAL)
        self.sessions.end(session.id)
        logger.info("logout by %s from %s", session.label, self._address(request))
        resp = _redirect("/login")
        resp.del_cookie(SESSION_COOKIE, path="/")
        return resp

    # ------------------------------------------------------------- the page
    async def index(self, request: web.Request) -> web.Response:
        session, expired = self._session(request)
        if session is None:
            return self._to_login(request, expired)
        view = await self.hub.current(ActingFor(session.user, session.role))
        result, session.flash = session.flash, None
        return self._html(render.page(view, list(self.hub.events), user=session.label,
                                      role=session.role, csrf=session.csrf, result=result))

    async def events(self, request: web.Request) -> web.StreamResponse:
        session, expired = self._session(request, touch=False)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "X-Accel-Buffering": "no"})
        if session is None:
            await resp.prepare(request)
            target = "/login?expired=1" if expired else "/login"
            await resp.write(f"event: expired\ndata: {json.dumps(target)}\n\n".encode())
            return resp
        sub = self.hub.subscribe(session.role)
        if sub is None:
            return web.Response(status=503, text=f"Too many live views are open (at most "
                                f"{self.hub.max_clients}); close some pages and reload.")
        try:
            await resp.prepare(request)
            await resp.write(b"retry: 2000\n\n")
            while True:
                if not self.sessions.alive(session):
                    await resp.write(b'event: expired\ndata: "/login?expired=1"\n\n')
                    break
                if self.hub.live and sub.version != self.hub.version:
                    sub.version = self.hub.version
                    data = json.dumps(self.hub.payload(session.role), separators=(",", ":"))
                    await resp.write(f"event: status\ndata: {data}\n\n".encode())
                sub.wake.clear()
                try:
                    await asyncio.wait_for(sub.wake.wait(), KEEPALIVE)
                except TimeoutError:
                    await resp.write(b": keepalive\n\n")
        except (ConnectionError, RuntimeError):     # the browser went away
            pass
        finally:
            self.hub.unsubscribe(sub)
        return resp

    # ------------------------------------------------------------- actions
    async def action(self, request: web.Request) -> web.StreamResponse:
        session, expired = self._session(request)
        if session is None:
            return self._to_login(request, expired)
        address = self._address(request)
        problem = self._origin_problem(request)
        form = await request.post()
        if problem or not self._csrf_ok(session, request, form):
            logger.warning("action refused for %s from %s: %s", session.label, address,
                           "Origin" if problem else "CSRF token")
            return self._refuse(request, 403, problem or CSRF_REFUSAL)
        if session.role != "admin":
            logger.warning("action %s by %s from %s refused: viewer",
                           str(form.get("action", ""))[:20], session.label, address)
            return self._refuse(request, 403, "Only administrators can change the cluster; "
                                f"you are logged in as {session.label}")
        try:
            act = actions.parse({k: str(val) for k, val in form.items()})
        except actions.BadInput as exc:
            return self._refuse(request, 400, str(exc), "Bad request")
        if form.get("confirmed") != "1" and not _wants_json(request):
            names = [m["name"] for m in (self.hub.view or {}).get("members", ())]
            return self._html(render.confirm_page(act, names, user=session.label,
                                                  csrf=session.csrf))
        try:
            reply = await self.control.call(act.op, act.args,
                                            acting=ActingFor(session.user, session.role))
            ok, message = actions.outcome(reply)
            code: Any = reply.get("code", 0) if isinstance(reply, dict) else 0
        except ControlError as exc:
            ok, message, code = False, exc.message, exc.code
        logger.info("action %s %s%s by %s from %s: %s: %s", act.name, act.target,
                    f" member {act.member}" if act.member else "", session.label, address,
                    "ok" if ok else f"refused ({code})", message.replace("\n", " / "))
        result = {"ok": ok, "message": message, "code": code, "command": act.command,
                  "action": act.name, "target": act.target}
        if _wants_json(request):
            return web.json_response(result)
        session.flash = result
        raise web.HTTPSeeOther("/")

    # ------------------------------------------------------------- metrics
    async def metrics(self, request: web.Request) -> web.Response:
        acting = None
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not self.conf.metrics_token \
                    or not _same(token.strip(), self.conf.metrics_token):
                return self._unauthorized()
        else:
            session, _ = self._session(request, touch=False)
            if session is None:
                return self._unauthorized()
            acting = ActingFor(session.user, session.role)
        try:
            doc = await self.control.call(p.OP_STATUS, acting=acting, timeout=10.0)
        except ControlError as exc:
            return web.Response(status=503, text=exc.message + "\n")
        pid = (doc.get("local") or {}).get("pid") or 0
        text = metrics.render(doc, metrics.process_figures(pid) if pid else None)
        return web.Response(text=text, content_type="text/plain",
                            headers={"X-Content-Type-Options": "nosniff"},
                            charset="utf-8")

    @staticmethod
    def _unauthorized() -> web.Response:
        return web.Response(status=401, text="401: log in, or send Authorization: Bearer "
                            "TOKEN (metrics_token_file in web.conf)\n",
                            headers={"WWW-Authenticate": 'Bearer realm="clusterd-web"'})


def runner_options() -> dict[str, Any]:
    """AppRunner options this aiohttp takes: handlers cancelled when the client goes away
    (aiohttp < 3.9 always did), no access log (logins and actions are logged instead)."""
    opts: dict[str, Any] = {"access_log": None}
    if "handler_cancellation" in inspect.signature(web.Server.__init__).parameters:
        opts["handler_cancellation"] = True
    return opts
