"""cluster_admin: the admin interface the redhat.cluster Ansible modules call.

One JSON request on stdin, one JSON reply on stdout. A refused request is still exit 0
with ``{"ok": false, "error": {...}}`` so the caller can show the message; only input
that is not a JSON request at all exits 2. Request (``v`` is required, 1)::

    {"v": 1, "op": "edit", "edit": "set_service", "args": {...}, "check": false}
    {"v": 1, "op": "export", "secrets": false}
    {"v": 1, "op": "status"}
    {"v": 1, "op": "service", "action": "relocate", "service": "web", "member": "node2"}
    {"v": 1, "op": "node", "action": "standby", "node": "node1"}
    {"v": 1, "op": "fence.verify", "nodes": ["node1"]}

The config comes from the running daemon (control ops ``conf.get``/``conf.propose``: the
daemon validates, writes and propagates; run as root, it asks ``conf.get`` for the secrets
in clear so that an edit writes them back unchanged, while anyone else gets them masked and
the daemon refuses a proposal that would write a mask back) or, when clusterd is not
running, from the local file, written atomically (bootstrap: on a node that ran in a
cluster before, the reply's ``pending`` says the file is only a pending proposal, since
clusterd starts on the config the cluster accepted; program parameters naming a
file here are checked as ``conf.propose`` checks them). A change is checked against this
node's fence agents (``conf.fence_agent_problems``), in check mode too, as are a rename of a
running cluster and (when the nodes change) node names resolving to one address here. A NUL
or control character XML cannot hold, or a control character in a name, refuses the whole
request, naming the field (``conf.refusals``). ``conf_path`` in
the request or ``$CLUSTERD_CONF_PATH`` (meant for tests) selects a file and never talks to
the daemon. The edit itself is done by the one config model, :mod:`clusterd.conf.edit`;
this module only moves it around.
Secrets (fence passwords) only travel on stdin and are masked in diffs and exports.
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from lxml import etree

from clusterd.conf.files import (  # 0640 root, fsync, rename
    read_limited,
    write_atomic,
)
from clusterd.conf.refusals import Resolver, unwritable_problems
from clusterd.conf.secrets import MASK, is_secret_param, masked_copy
from clusterd.configsync.startup import ACCEPTED_FILE, pending_path
from clusterd.errors import ConfigError, ControlError
from clusterd.node.proposal import (
    refuse_shared_addresses,
    refuse_untrusted_programs,
    rename_refusal,
)
from clusterd.node.wiring import DEFAULT_STATE_DIR
from clusterd.wire.messages import MAX_CONFIG_BYTES

if TYPE_CHECKING:
    from clusterd.conf import ClusterConf

logger = logging.getLogger(__name__)

REQUEST_VERSION = 1
DEFAULT_CONF_PATH = "/etc/cluster/cluster.conf"
CONF_PATH_ENV = "CLUSTERD_CONF_PATH"
STATE_DIR_ENV = "CLUSTERD_STATE_DIR"  # tests: where the accepted copy is looked for
EDITS = ("set_cluster", "set_failover_domain", "set_service", "set_resource",
         "set_fence_device", "set_node_fence", "set_alert")
SERVICE_ACTIONS = ("enable", "disable", "relocate", "restart", "stop", "freeze", "unfreeze")
NODE_ACTIONS = ("standby", "active")
PROPOSE_ATTEMPTS = 3
EXIT_OK = 0
EXIT_BAD_INPUT = 2

# Error codes of the reply (stable: the modules map them to messages).
E_INVALID = "invalid"
E_BAD_REQUEST = "bad_request"
E_NOT_RUNNING = "not_running"
E_NOT_INSTALLED = "not_installed"
E_NOT_SUPPORTED = "not_supported"
E_NO_CONFIG = "no_config"
_CODE_MAP = {"invalid_config": E_INVALID, "unknown_op": E_NOT_SUPPORTED}
_RETRY_CODES = frozenset({"stale_version", "conflict"})

# Containers of parameters in an export (fence device params, resource attrs): only their
# keys can be secrets (clusterd.conf.secrets: totem "token" is a timer, not a secret).
_PARAM_KEYS = frozenset({"params", "attrs"})


class ControlCaller(Protocol):
    def call(self, op: str, args: Mapping[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True)
class Context:
    """What a request runs against: the config model, the daemon (or None) and the file."""

    model: Any
    client: ControlCaller | None
    conf_path: str
    fence_agents: Any = None      # conf.fenceparams.FenceAgents; None: this node's agents
    resolve: Resolver | None = None  # node name -> address; None: as this node's daemon
    state_dir: str = DEFAULT_STATE_DIR  # where clusterd keeps the accepted copy


@dataclass(frozen=True)
class Loaded:
    conf: ClusterConf | None
    via: str          # "daemon" or "file"


def mask_data(data: Any, in_params: bool = False) -> Any:
    """Mask secret parameter values in an export (any nesting of dicts and lists)."""
    if isinstance(data, Mapping):
        return {k: (MASK if in_params and is_secret_param(str(k)) and isinstance(v, str)
                    else mask_data(v, in_params or k in _PARAM_KEYS))
                for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [mask_data(v, in_params) for v in data]
    return data


def masked_text(conf: ClusterConf | None) -> str:
    """The canonical cluster.conf text with every secret parameter masked."""
    if conf is None:
        return ""
    root = masked_copy(etree.fromstring(conf.canonical_bytes()))
    return '<?xml version="1.0"?>\n' + etree.tostring(root, encoding="unicode") + "\n"


def header(conf: ClusterConf | None) -> str:
    return "cluster.conf (absent)" if conf is None else f"cluster.conf (version {conf.version})"


def make_diff(before: ClusterConf | None, after: ClusterConf | None) -> dict[str, str]:
    return {"before": masked_text(before), "after": masked_text(after),
            "before_header": header(before), "after_header": header(after)}


def ok(**fields: Any) -> dict[str, Any]:
    return {"v": REQUEST_VERSION, "ok": True, **fields}


def error_reply(code: str, message: str, problems: list[dict[str, str]] | None = None
                ) -> dict[str, Any]:
    return {"v": REQUEST_VERSION, "ok": False,
            "error": {"code": code, "message": message, "problems": problems or []}}


# --- reading and writing the config ------------------------------------------------


def load(ctx: Context, use_daemon: bool = True) -> Loaded:
    """The current config: from the daemon when it runs, else the file, else None."""
    if ctx.client is not None and use_daemon:
        try:
            result = ctx.client.call("conf.get", {"text": True,
                                                  "reveal_secrets": os.geteuid() == 0})
        except ControlError as exc:
            if exc.code != E_NOT_RUNNING:
                raise
        else:
            text = result.get("conf") if isinstance(result, Mapping) else None
            if not isinstance(text, str):
                raise ControlError("protocol_error", "clusterd answered conf.get without "
                                                     "the config text ('conf')")
            return Loaded(ctx.model.parse(text.encode("utf-8"), source="clusterd"), "daemon")
    if os.path.exists(ctx.conf_path):
        return Loaded(ctx.model.load(ctx.conf_path), "file")
    return Loaded(None, "file")


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Serialize local read-edit-write cycles (lock on the config's directory)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ControlError(E_BAD_REQUEST, f"directory {directory} of {path} does not exist")
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def apply_edit(model: Any, before: ClusterConf | None, edit: str,
               args: Mapping[str, Any]) -> ClusterConf:
    """Run one edit of the config model; bootstrap with ``new_cluster`` when no config."""
    if edit not in EDITS:
        raise ControlError(E_BAD_REQUEST, f"unknown edit {edit!r}; known: {', '.join(EDITS)}")
    if before is None and edit != "set_cluster":
        raise ControlError(E_NO_CONFIG, "there is no cluster.conf on this node and clusterd "
                                        "is not running: create the cluster first "
                                        "(redhat.cluster.cluster_conf)")
    try:
        # new_cluster takes set_cluster's keywords (**settings): check them against it.
        inspect.signature(model.edit.set_cluster if before is None else
                          getattr(model.edit, edit)).bind(before, **args)
        if before is None:
            inspect.signature(model.new_cluster).bind(**args)
    except TypeError as exc:
        raise ControlError(E_BAD_REQUEST, f"edit {edit}: {exc}") from None
    if before is None:
        return model.new_cluster(**args)
    return getattr(model.edit, edit)(before, **args)


# --- operations ----------------------------------------------------------------------


def op_edit(ctx: Context, req: Mapping[str, Any]) -> dict[str, Any]:
    edit = req.get("edit")
    args = req.get("args", {})
    check = req.get("check", False)
    if not isinstance(edit, str):
        raise ControlError(E_BAD_REQUEST, "op 'edit' needs a string 'edit'")
    if not isinstance(args, Mapping) or not isinstance(check, bool):
        raise ControlError(E_BAD_REQUEST, "op 'edit': 'args' must be an object and "
                                          "'check' a boolean")
    for attempt in range(1, PROPOSE_ATTEMPTS + 1):
        loaded = load(ctx) if ctx.client is not None else None
        if loaded is None or loaded.via == "file":
            with file_lock(ctx.conf_path):   # read again under the lock
                return _edit_once(ctx, load(ctx, use_daemon=False), edit, args, check)
        try:
            return _edit_once(ctx, loaded, edit, args, check)
        except ControlError as exc:
            # Someone else changed the config between our read and our proposal: redo
            # the edit on the newer config (it may turn out to be a no-op now).
            if exc.code not in _RETRY_CODES or attempt == PROPOSE_ATTEMPTS:
                raise
            logger.info("edit %s: daemon refused the proposal (%s), retrying", edit, exc.code)
    raise AssertionError("unreachable")


def _edit_once(ctx: Context, loaded: Loaded, edit: str, args: Mapping[str, Any],
               check: bool) -> dict[str, Any]:
    before = loaded.conf
    after = apply_edit(ctx.model, before, edit, args)
    changed = after is not before
    if changed and loaded.via == "daemon" and before is not None and after.name != before.name:
        raise rename_refusal(before.name, after.name, "cluster_admin")
    if changed:
        _check_fence_agents(ctx, after)
        if before is None or [n.name for n in before.nodes] != [n.name for n in after.nodes]:
            refuse_shared_addresses(after, source=ctx.conf_path if loaded.via == "file"
                                    else "cluster_admin", resolve=ctx.resolve)
    if changed and loaded.via == "file":
        refuse_untrusted_programs(after, source=ctx.conf_path)
    if changed and not check:
        data = after.canonical_bytes()
        if loaded.via == "daemon":
            assert ctx.client is not None
            ctx.client.call("conf.propose", {"conf": data.decode("utf-8")})
        else:
            write_atomic(ctx.conf_path, data)
    pending = None
    if changed and loaded.via == "file":
        pending = _pending_note(ctx, after.canonical_bytes(), after.version, check)
    return ok(changed=changed, config_version=after.version, source=loaded.via,
              diff=make_diff(before, after), tree_warnings=_tree_warnings(after),
              pending=pending)


def _pending_note(ctx: Context, data: bytes, version: int, check: bool
                  ) -> dict[str, Any] | None:
    """A file written while clusterd is stopped on a node that ran in a cluster before is
    a pending proposal, never the cluster's config: at its next start clusterd runs the
    config the cluster accepted and keeps this file aside (configsync/startup.py). Say
    so, and how to apply it. None on a first start (no accepted copy: the file is run)."""
    copy_path = os.path.join(ctx.state_dir, ACCEPTED_FILE)
    try:
        copy = read_limited(copy_path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return None
    if copy == data:
        return None
    try:
        accepted: Any = ctx.model.parse(copy, source=copy_path).version
    except ConfigError:
        accepted = "?"
    kept = pending_path(ctx.conf_path, version=version)
    return {"path": kept, "version": version, "accepted_version": accepted, "message": (
        f"clusterd is not running here: {ctx.conf_path} {'would hold' if check else 'now holds'}"
        f" config_version {version}, which the cluster has not accepted (this node last "
        f"ran config_version {accepted} as accepted by the cluster). At its next start "
        f"clusterd runs the accepted config and keeps this file as {kept}: propose it from "
        f"this node once it is a member of the quorate cluster (clusterd conf propose "
        f"{kept}), or run this task again then")}


def _tree_warnings(conf: ClusterConf | None) -> list[str]:
    """What the resulting config is accepted with, as rgmanager warned (a resource
    referenced past its type's max instances ...): the modules show them as warnings."""
    return [] if conf is None else [str(w) for w in conf.tree_warnings]


def _check_fence_agents(ctx: Context, conf: ClusterConf) -> None:
    """ConfigError for fence device parameters this node's agents do not take."""
    agents = ctx.fence_agents
    if agents is None:
        from clusterd.fencing.catalog import MetadataCatalog  # asyncio: only for edits
        agents = MetadataCatalog()
    found = ctx.model.fence_agent_problems(conf, agents)
    if found:
        raise ConfigError(found, conf.source)


def op_export(ctx: Context, req: Mapping[str, Any]) -> dict[str, Any]:
    secrets = req.get("secrets", False)
    if not isinstance(secrets, bool):
        raise ControlError(E_BAD_REQUEST, "op 'export': 'secrets' must be a boolean")
    loaded = load(ctx)
    if loaded.conf is None:
        raise ControlError(E_NO_CONFIG, f"there is no cluster.conf at {ctx.conf_path} and "
                                        "clusterd is not running")
    export = ctx.model.export(loaded.conf)
    status = _call(ctx, "status", {}) if loaded.via == "daemon" else None
    return ok(config_version=loaded.conf.version, source=loaded.via,
              export=export if secrets else mask_data(export), status=status)


def op_status(ctx: Context, req: Mapping[str, Any]) -> dict[str, Any]:
    return ok(status=_call(ctx, "status", {}))


def op_service(ctx: Context, req: Mapping[str, Any]) -> dict[str, Any]:
    action, service = req.get("action"), req.get("service")
    if action not in SERVICE_ACTIONS:
        raise ControlError(E_BAD_REQUEST, f"op 'service': action must be one of "
                                          f"{', '.join(SERVICE_ACTIONS)}, got {action!r}")
    if not isinstance(service, str) or not service:
        raise ControlError(E_BAD_REQUEST, "op 'service' needs a service name")
    args: dict[str, Any] = {"service": service}
    for key, kind in (("member", str), ("timeout", int)):
        if req.get(key) is not None:
            if not isinstance(req[key], kind) or isinstance(req[key], bool):
                raise ControlError(E_BAD_REQUEST, f"op 'service': {key!r} must be "
                                                  f"{'a string' if kind is str else 'an integer'}")
            args[key] = req[key]
    if req.get("follow_domain"):   # clusvcadm -e -F: where the domain puts it, not here
        if req["follow_domain"] is not True or action != "enable" or "member" in args:
            raise ControlError(E_BAD_REQUEST, "op 'service': 'follow_domain' is true or "
                                              "absent, and goes with action enable without "
                                              "a member")
        args["follow_domain"] = True
    return ok(result=_call(ctx, f"svc.{action}", args))


def op_node(ctx: Context, req: Mapping[str, Any]) -> dict[str, Any]:
    action, node = req.get("action"), req.get("node")
    if action not in NODE_ACTIONS:
        raise ControlError(E_BAD_REQUEST, f"op 'node': action must be one of "
                                          f"{', '.join(NODE_ACTIONS)}, got {action!r}")
    if not isinstance(node, str) or not node:
        raise ControlError(E_BAD_REQUEST, "op 'node' needs a node name")
    return ok(result=_call(ctx, f"node.{action}", {"node": node}))


def op_fence_verify(ctx: Context, req: Mapping[str, Any]) -> dict[str, Any]:
    nodes = req.get("nodes")
    if nodes is not None and not (isinstance(nodes, list) and
                                  all(isinstance(n, str) for n in nodes)):
        raise ControlError(E_BAD_REQUEST, "op 'fence.verify': 'nodes' must be a list of names")
    return ok(result=_call(ctx, "fence.verify", {} if nodes is None else {"nodes": nodes}))


def _call(ctx: Context, op: str, args: Mapping[str, Any]) -> Any:
    """A control op that needs the daemon: refuse clearly when it is not there."""
    if ctx.client is None:
        raise ControlError(E_NOT_RUNNING, f"{op} needs the running clusterd, but a config file "
                                          f"was named ({ctx.conf_path}): file mode only")
    try:
        return ctx.client.call(op, args)
    except ControlError as exc:
        if exc.code == "unknown_op":
            raise ControlError(E_NOT_SUPPORTED, f"clusterd on this node does not support "
                                                f"{op!r} yet") from None
        raise


OPS = {"edit": op_edit, "export": op_export, "status": op_status, "service": op_service,
       "node": op_node, "fence.verify": op_fence_verify}


def _default_model() -> Any:
    try:
        import clusterd.conf as model
        import clusterd.conf.edit  # noqa: F401  (the edit operations: model.edit)
    except ImportError as exc:
        raise ControlError(E_NOT_INSTALLED, f"the clusterd config model is not installed "
                                            f"({exc})") from None
    return model


def _default_client(req: Mapping[str, Any]) -> ControlCaller:
    """The control client; waits longer than a service op's own ``timeout`` (relocate)."""
    from clusterd.control.client import ControlClient
    wait = req.get("timeout")
    extra = wait if isinstance(wait, int) and not isinstance(wait, bool) and wait > 0 else 0
    return ControlClient(timeout=30.0 + extra)


def handle(req: Any, *, model: Any = None, client: ControlCaller | None = None,
           environ: Mapping[str, str] | None = None, fence_agents: Any = None,
           resolve: Resolver | None = None) -> dict[str, Any]:
    """Answer one decoded request; never raises for a refused request."""
    env = os.environ if environ is None else environ
    try:
        if not isinstance(req, Mapping):
            raise ControlError(E_BAD_REQUEST, "request must be a JSON object")
        unwritable = unwritable_problems("", req)
        if unwritable:
            raise ConfigError(unwritable, "request")
        if req.get("v") != REQUEST_VERSION:
            raise ControlError("unsupported_version", f"request version must be "
                                                      f"{REQUEST_VERSION}, got {req.get('v')!r}")
        op = OPS.get(req.get("op"))  # type: ignore[arg-type]
        if op is None:
            raise ControlError(E_BAD_REQUEST, f"unknown op {req.get('op')!r}; known: "
                                              f"{', '.join(OPS)}")
        explicit = req.get("conf_path") or env.get(CONF_PATH_ENV)
        if explicit is not None and not isinstance(explicit, str):
            raise ControlError(E_BAD_REQUEST, "'conf_path' must be a string")
        if explicit is None and client is None:
            client = _default_client(req)
        ctx = Context(model=model if model is not None else _default_model(),
                      client=None if explicit else client,
                      conf_path=explicit or DEFAULT_CONF_PATH, fence_agents=fence_agents,
                      resolve=resolve,
                      state_dir=env.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)
        return op(ctx, req)
    except ConfigError as exc:
        return error_reply(E_INVALID, str(exc),
                           [{"where": p.where, "reason": p.reason} for p in exc.problems])
    except ControlError as exc:
        return error_reply(_CODE_MAP.get(exc.code, exc.code), exc.message)
    except OSError as exc:
        return error_reply("io_error", f"{exc.strerror or exc} ({exc.filename or '?'})")


def main(argv: list[str] | None = None, stdin: TextIO | None = None,
         stdout: TextIO | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = stdout or sys.stdout
    if args and args[0] in ("-h", "--help"):
        out.write(__doc__ or "")
        return EXIT_OK
    try:
        req = json.loads((stdin or sys.stdin).read())
    except ValueError as exc:
        req, problem = None, f"input is not JSON: {exc}"
    else:
        problem = "" if isinstance(req, dict) else "input is not a JSON object"
    if problem:
        json.dump(error_reply(E_BAD_REQUEST, problem), out)
        out.write("\n")
        return EXIT_BAD_INPUT
    json.dump(handle(req), out, sort_keys=True)
    out.write("\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
