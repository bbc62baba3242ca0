"""The page's actions: form input checked, the control op, the command-line equivalent.

Pure. The web service only checks that a request is well formed (a known action, a
service or node name without control characters); whether it may happen (a member
outside a restricted domain, no quorum, a frozen service ...) is the daemon's answer,
shown as it words it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_NAME = 256
RG_ERUN = -10      # "Service is already running": clusvcadm exits 0 on it too

# action -> (control op, what it acts on, takes a target member)
ACTIONS: dict[str, tuple[str, str, bool]] = {
    "enable": ("svc.enable", "service", True),
    "disable": ("svc.disable", "service", False),
    "restart": ("svc.restart", "service", False),
    "relocate": ("svc.relocate", "service", True),
    "freeze": ("svc.freeze", "service", False),
    "unfreeze": ("svc.unfreeze", "service", False),
    "standby": ("node.standby", "node", False),
    "active": ("node.active", "node", False),
}
SERVICE_ACTIONS = tuple(a for a, (_, kind, _m) in ACTIONS.items() if kind == "service")
NODE_ACTIONS = tuple(a for a, (_, kind, _m) in ACTIONS.items() if kind == "node")
_FLAGS = {"enable": "-e", "disable": "-d", "restart": "-R", "relocate": "-r",
          "freeze": "-Z", "unfreeze": "-U"}
_VERBS = {"enable": "Enable", "disable": "Disable", "restart": "Restart",
          "relocate": "Relocate", "freeze": "Freeze", "unfreeze": "Unfreeze",
          "standby": "Put in standby", "active": "Make active"}


class BadInput(ValueError):
    """A request the page would never send: HTTP 400 with this sentence."""


@dataclass(frozen=True)
class Action:
    name: str              # enable, relocate, standby ...
    target: str            # the service (service:web) or the node
    member: str = ""       # enable/relocate: the member asked for ("" = any)

    @property
    def op(self) -> str:
        return ACTIONS[self.name][0]

    @property
    def args(self) -> dict[str, Any]:
        kind = ACTIONS[self.name][1]
        out: dict[str, Any] = {kind: self.target}
        if self.member:
            out["member"] = self.member
        return out

    @property
    def command(self) -> str:
        """What to type instead (clusvcadm, or cluster_admin for node standby/active)."""
        if self.name in NODE_ACTIONS:
            request = json.dumps({"v": 1, "op": "node", "action": self.name,
                                  "node": self.target})
            return f"echo {shlex.quote(request)} | cluster_admin"
        short = self.target.removeprefix("service:")
        cmd = f"clusvcadm {_FLAGS[self.name]} {shlex.quote(short)}"
        return cmd + (f" -m {shlex.quote(self.member)}" if self.member else "")

    @property
    def sentence(self) -> str:
        where = f" on {self.member}" if self.member and self.name == "enable" else \
            f" to {self.member}" if self.member else ""
        return f"{_VERBS[self.name]} {self.target}{where}?"


def _name(field: str, value: str | None, required: bool) -> str:
    value = (value or "").strip()
    if not value:
        if required:
            raise BadInput(f"The request names no {field}; choose one on the page.")
        return ""
    if len(value) > MAX_NAME:
        raise BadInput(f"The {field} name is longer than {MAX_NAME} characters.")
    if not value.isprintable():
        raise BadInput(f"The {field} name contains control characters; no {field} is "
                       "named like that.")
    return value


def parse(form: Mapping[str, str]) -> Action:
    name = (form.get("action") or "").strip()
    if name not in ACTIONS:
        raise BadInput(f"Unknown action {name[:40]!r}; the actions are "
                       f"{', '.join(ACTIONS)}.")
    _, kind, takes_member = ACTIONS[name]
    target = _name(kind, form.get(kind), True)
    member = _name("member", form.get("member"), False) if takes_member else ""
    return Action(name, target, member)


def outcome(result: Any) -> tuple[bool, str]:
    """(ok, message) of an op's result ``{"code", "message", "detail", ...}``: the daemon's
    words, with its detail line when it gives one."""
    if not isinstance(result, Mapping):
        return True, "Done." if result is None else str(result)
    code = result.get("code", 0)
    message = str(result.get("message") or ("Success" if code == 0 else f"code {code}"))
    detail = result.get("detail")
    if detail and str(detail) not in message:
        message = f"{message}\n{detail}"
    return code in (0, RG_ERUN), message
