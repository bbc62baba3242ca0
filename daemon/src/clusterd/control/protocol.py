"""Control socket protocol: versioned JSON, one request per line (pure, no I/O).

Request::

    {"v": 1, "op": "status", "args": {}}

A request a trusted proxy (the web service, ``clusterd --web-user``) makes for one of its
logged-in users carries who that is; the daemon grants at most that user's role::

    {"v": 1, "op": "svc.relocate", "args": {...}, "as": {"user": "alice", "role": "admin"}}

Reply::

    {"v": 1, "ok": true, "result": ...}
    {"v": 1, "ok": false, "error": {"code": "unknown_op", "message": "..."}}

Operations live in an :class:`OpRegistry`; each one declares its arguments (name, type,
required) so that the server validates every request the same way before a handler runs,
and the :class:`Role` a caller needs (``read``, ``admin``, ``root``; the registry refuses an
op without one). An argument may ask for more when it is true (``conf.get``'s
``reveal_secrets`` needs ``root``). Fencing and services register their own operations
(``fence.node``, ``svc.enable`` ...) on the same registry without touching the server loop.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clusterd.errors import ControlError

PROTOCOL_VERSION = 1
# Accepted request versions (a newer client may still speak v1 to an older daemon).
SUPPORTED_VERSIONS = frozenset({1})
# One request line, including a base64 cluster.conf for 300 nodes with services, fits
# easily; anything bigger is refused before parsing.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MIN_INT_ARG, MAX_INT_ARG = -(2**63), 2**63 - 1   # an integer argument fits 64 bits
MAX_DEPTH = 32   # levels of JSON nesting in a request (no op's arguments need more)

# Stable error codes (CLIs map them to exit codes; tests assert them).
E_BAD_REQUEST = "bad_request"
E_TOO_LARGE = "too_large"
E_VERSION = "unsupported_version"
E_UNKNOWN_OP = "unknown_op"
E_BAD_ARGS = "bad_args"
E_NOT_READY = "not_ready"
E_DENIED = "denied"
E_BUSY = "busy"
E_TIMEOUT = "timeout"
E_INTERNAL = "internal"
E_INVALID_CONFIG = "invalid_config"
E_STALE_VERSION = "stale_version"
E_CONFLICT = "conflict"
E_NO_QUORUM = "no_quorum"
E_NOT_RUNNING = "not_running"          # client side: no daemon behind the socket
E_PERMISSION = "permission_denied"     # client side: the kernel refused connect()
E_PROTOCOL = "protocol_error"          # client side: the daemon answered garbage

_JSON_TYPES: dict[type, str] = {str: "a string", int: "an integer", bool: "a boolean",
                                dict: "an object", list: "a list"}


class Role(enum.Enum):
    """What a caller may do on the control socket, each role including the ones before it:
    ``read`` (allow-listed users and groups: status, conf.get masked ...), ``admin`` (root
    or the admin group named in cluster.conf: every change), ``root`` (uid 0 only:
    secrets in clear)."""

    READ = "read"
    ADMIN = "admin"
    ROOT = "root"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank


_ROLE_RANK = {Role.READ: 0, Role.ADMIN: 1, Role.ROOT: 2}


@dataclass(frozen=True)
class Arg:
    """One declared argument of an operation; ``role``: what a caller needs to pass it
    as true (None: the op's own role is enough)."""

    name: str
    kind: type
    required: bool = True
    help: str = ""
    role: Role | None = None

    def check(self, op: str, value: Any) -> None:
        ok = isinstance(value, self.kind)
        if self.kind is int and isinstance(value, bool):
            ok = False
        if ok and self.kind is int and not MIN_INT_ARG <= value <= MAX_INT_ARG:
            # a JSON integer beyond 64 bits is no count or timeout a handler can use
            # (float() of one raises OverflowError): refused here, like a wrong type
            raise ControlError(E_BAD_ARGS, f"op {op!r}: argument {self.name!r} must be "
                                           f"an integer in {MIN_INT_ARG}..{MAX_INT_ARG}")
        if not ok:
            raise ControlError(E_BAD_ARGS, f"op {op!r}: argument {self.name!r} must be "
                                           f"{_JSON_TYPES.get(self.kind, self.kind.__name__)}")


# What a proxy's user may be (``as.role``) and the socket role each one gets.
PROXY_ROLES: dict[str, Role] = {"viewer": Role.READ, "admin": Role.ADMIN}
_PROXY_USER_MAX = 64


@dataclass(frozen=True)
class OnBehalf:
    """The user a trusted proxy acts for (the request's ``as``): a name for the logs and
    the role the proxy says the user has (``viewer`` or ``admin``)."""

    user: str
    role: str

    @property
    def socket_role(self) -> Role:
        return PROXY_ROLES[self.role]

    @classmethod
    def from_doc(cls, doc: Any) -> OnBehalf:
        if not isinstance(doc, dict):
            raise ControlError(E_BAD_REQUEST, "'as' must be an object {\"user\": NAME, "
                                              "\"role\": \"viewer\"|\"admin\"}")
        unknown = sorted(set(doc) - {"user", "role"})
        if unknown:
            raise ControlError(E_BAD_REQUEST, f"unknown field(s) in 'as': {', '.join(unknown)}")
        user, role = doc.get("user"), doc.get("role")
        if not isinstance(user, str) or not 0 < len(user) <= _PROXY_USER_MAX \
                or not user.isprintable() or user != user.strip():
            raise ControlError(E_BAD_REQUEST, f"'as.user' must be a user name of 1-"
                                              f"{_PROXY_USER_MAX} printable characters "
                                              "without surrounding spaces")
        if role not in PROXY_ROLES:
            raise ControlError(E_BAD_REQUEST, f"'as.role' must be one of "
                                              f"{', '.join(PROXY_ROLES)}, not {role!r}")
        return cls(user, role)


@dataclass(frozen=True)
class Peer:
    """Who is calling: SO_PEERCRED (pid, uid, gid) and the supplementary groups the kernel
    recorded at connect() (SO_PEERGROUPS; see ``control.access``); ``on_behalf``: the user
    a trusted proxy acts for in this request."""

    pid: int
    uid: int
    gid: int
    groups: frozenset[int] = frozenset()
    on_behalf: OnBehalf | None = None

    @property
    def gids(self) -> frozenset[int]:
        return self.groups | {self.gid}

    @property
    def who(self) -> str:
        """For logs and origins: "uid 0", or "alice (admin) via web, uid 998"."""
        if self.on_behalf is None:
            return f"uid {self.uid}"
        return f"{self.on_behalf.user} ({self.on_behalf.role}) via web, uid {self.uid}"


Handler = Callable[[Mapping[str, Any], Peer], Awaitable[Any]]


@dataclass(frozen=True)
class OpSpec:
    name: str
    handler: Handler
    role: Role
    args: tuple[Arg, ...] = ()
    help: str = ""

    def needs(self, args: Mapping[str, Any]) -> tuple[Role, str]:
        """The role a call with ``args`` needs, and what to call the call in a refusal
        (``conf.get with reveal_secrets``)."""
        needed, what = self.role, self.name
        for arg in self.args:
            if arg.role is not None and args.get(arg.name) and not needed.includes(arg.role):
                needed, what = arg.role, f"{self.name} with {arg.name}"
        return needed, what


@dataclass(frozen=True)
class Request:
    v: int
    op: str
    args: Mapping[str, Any] = field(default_factory=dict)
    on_behalf: OnBehalf | None = None

    @classmethod
    def from_line(cls, line: bytes) -> Request:
        """Decode one request line; every failure is a :class:`ControlError` with a code."""
        if len(line) > MAX_REQUEST_BYTES:
            raise ControlError(E_TOO_LARGE, f"request of {len(line)} bytes exceeds the "
                                            f"limit of {MAX_REQUEST_BYTES} bytes")
        try:
            doc = json.loads(line)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ControlError(E_BAD_REQUEST, f"request is not valid JSON: {exc}") from None
        except RecursionError:   # deep nesting: json raises it, not a ValueError
            raise ControlError(E_BAD_REQUEST, "request is not valid JSON: nested too "
                                              "deeply") from None
        if not isinstance(doc, dict):
            raise ControlError(E_BAD_REQUEST, "request must be a JSON object")
        if _deeper_than(doc, MAX_DEPTH):
            # json parses up to the interpreter's recursion limit; an answer that echoes
            # such a value (or a log line, or a handler) would not: refused here
            raise ControlError(E_BAD_REQUEST, f"request is nested deeper than {MAX_DEPTH} "
                                              "levels")
        unknown = sorted(set(doc) - {"v", "op", "args", "as"})
        if unknown:
            raise ControlError(E_BAD_REQUEST, f"unknown request field(s): {', '.join(unknown)}")
        v = doc.get("v")
        if not isinstance(v, int) or isinstance(v, bool):
            raise ControlError(E_BAD_REQUEST, "request needs an integer protocol version 'v'")
        if v not in SUPPORTED_VERSIONS:
            raise ControlError(E_VERSION, f"protocol version {v} is not supported "
                                          f"(supported: {sorted(SUPPORTED_VERSIONS)})")
        op = doc.get("op")
        if not isinstance(op, str) or not op:
            raise ControlError(E_BAD_REQUEST, "request needs a string 'op'")
        args = doc.get("args", {})
        if not isinstance(args, dict):
            raise ControlError(E_BAD_ARGS, f"op {op!r}: 'args' must be an object")
        on_behalf = OnBehalf.from_doc(doc["as"]) if "as" in doc else None
        return cls(v=v, op=op, args=args, on_behalf=on_behalf)


def _deeper_than(doc: Any, limit: int) -> bool:
    """Whether ``doc`` nests lists/objects more than ``limit`` levels (iterative)."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        elif not isinstance(value, list):
            continue
        if depth > limit:
            return True
        stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
    return False


class OpRegistry:
    """Operations the control server answers. Register once at start-up."""

    def __init__(self) -> None:
        self._ops: dict[str, OpSpec] = {}

    def register(self, name: str, handler: Handler, args: tuple[Arg, ...] = (),
                 help: str = "", *, role: Role) -> None:
        """Add an op; ``role`` is what a caller needs (least privilege: an op that changes
        anything is ``Role.ADMIN``). Refuses an op without a role or registered twice."""
        if not isinstance(role, Role):
            raise TypeError(f"control op {name!r} must declare its role (one of "
                             f"{', '.join(f'Role.{r.name}' for r in Role)}), got {role!r}")
        if name in self._ops:
            raise ValueError(f"control op {name!r} is already registered")
        self._ops[name] = OpSpec(name, handler, role, tuple(args), help)

    def roles(self) -> dict[str, Role]:
        """``{op: role}`` of every registered op (the table docs/security.md shows)."""
        return {name: spec.role for name, spec in sorted(self._ops.items())}

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._ops))

    def __contains__(self, name: object) -> bool:
        return name in self._ops

    def resolve(self, request: Request) -> tuple[OpSpec, dict[str, Any]]:
        """Find the op and check its arguments; returns (spec, validated args)."""
        spec = self._ops.get(request.op)
        if spec is None:
            raise ControlError(E_UNKNOWN_OP, f"unknown op {request.op!r}; known ops: "
                                             f"{', '.join(self.names())}")
        declared = {a.name: a for a in spec.args}
        extra = sorted(set(request.args) - set(declared))
        if extra:
            raise ControlError(E_BAD_ARGS, f"op {spec.name!r}: unknown argument(s) "
                                           f"{', '.join(extra)}")
        for arg in spec.args:
            if arg.name in request.args:
                arg.check(spec.name, request.args[arg.name])
            elif arg.required:
                raise ControlError(E_BAD_ARGS, f"op {spec.name!r}: missing argument "
                                               f"{arg.name!r}")
        return spec, dict(request.args)


def _dump(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode() + b"\n"


def encode_request(op: str, args: Mapping[str, Any] | None = None,
                   on_behalf: OnBehalf | None = None) -> bytes:
    doc: dict[str, Any] = {"v": PROTOCOL_VERSION, "op": op, "args": dict(args or {})}
    if on_behalf is not None:
        doc["as"] = {"user": on_behalf.user, "role": on_behalf.role}
    return _dump(doc)


def encode_result(result: Any) -> bytes:
    return _dump({"v": PROTOCOL_VERSION, "ok": True, "result": result})


def encode_error(code: str, message: str) -> bytes:
    return _dump({"v": PROTOCOL_VERSION, "ok": False,
                  "error": {"code": code, "message": message}})


def decode_response(line: bytes) -> Any:
    """Return the result of a reply line or raise its error as :class:`ControlError`."""
    try:
        doc = json.loads(line)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ControlError(E_PROTOCOL, "clusterd sent a reply that is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("ok"), bool):
        raise ControlError(E_PROTOCOL, "clusterd sent a reply without 'ok'")
    if doc["ok"]:
        return doc.get("result")
    err = doc.get("error")
    if not isinstance(err, dict):
        raise ControlError(E_PROTOCOL, "clusterd sent an error reply without 'error'")
    raise ControlError(str(err.get("code", E_PROTOCOL)), str(err.get("message", "")))


def conf_bytes_from_args(op: str, args: Mapping[str, Any]) -> bytes:
    """A proposed cluster.conf arrives as ``conf`` (text) or ``conf_b64`` (base64)."""
    has_text, has_b64 = "conf" in args, "conf_b64" in args
    if has_text == has_b64:
        raise ControlError(E_BAD_ARGS, f"op {op!r}: give exactly one of 'conf' (text) "
                                       "or 'conf_b64' (base64)")
    if has_text:
        return str(args["conf"]).encode("utf-8")
    try:
        return base64.b64decode(str(args["conf_b64"]), validate=True)
    except (binascii.Error, ValueError):
        raise ControlError(E_BAD_ARGS, f"op {op!r}: 'conf_b64' is not valid base64") from None


# The argument lists of the core operations, shared by the server (which registers
# handlers) and the CLIs (which only need the names).
OP_STATUS = "status"
OP_CONF_GET = "conf.get"
OP_CONF_PROPOSE = "conf.propose"
OP_RELOAD = "reload"
OP_LEAVE = "leave"
OP_QUORUM_EXPECTED = "quorum.expected"

CORE_OP_ARGS: dict[str, tuple[Arg, ...]] = {
    OP_STATUS: (),
    OP_CONF_GET: (Arg("text", bool, required=False, help="include the canonical file"),
                  Arg("reveal_secrets", bool, required=False, role=Role.ROOT,
                      help="the text with secrets in clear (root only; masked otherwise)")),
    OP_CONF_PROPOSE: (Arg("conf", str, required=False, help="cluster.conf as text"),
                      Arg("conf_b64", str, required=False, help="cluster.conf as base64")),
    OP_RELOAD: (),
    OP_LEAVE: (Arg("mode", str, required=False,
                   help="'leave' (default: stop the services, peers take them over) or "
                        "'restart' (keep them running; the next daemon re-adopts them)"),),
    OP_QUORUM_EXPECTED: (Arg("expected", int, help="the new expected votes (at least 1)"),),
}
CORE_OP_ROLES: dict[str, Role] = {OP_STATUS: Role.READ, OP_CONF_GET: Role.READ,
                                  OP_CONF_PROPOSE: Role.ADMIN, OP_RELOAD: Role.ADMIN,
                                  OP_LEAVE: Role.ADMIN, OP_QUORUM_EXPECTED: Role.ADMIN}
