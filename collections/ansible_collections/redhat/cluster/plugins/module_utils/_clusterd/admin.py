# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Private to the redhat.cluster collection: may change at any time.

"""Talk to clusterd's ``cluster_admin`` (JSON on stdin, JSON on stdout).

Nothing here imports AnsibleModule: modules build an :class:`AdminClient` from their
``get_bin_path`` and ``run_command`` with :func:`admin_client`, and tests pass fake
runners (a callable ``(argv, data) -> (rc, stdout, stderr)``).
"""

from __future__ import annotations

import json
import typing as t

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.support import (
    unused_warnings,
)

ADMIN_COMMAND = "cluster_admin"
ADMIN_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/opt/clusterd/bin"]
REQUEST_VERSION = 1

MSG_NOT_INSTALLED = "clusterd is not installed on this node (cluster_admin not found)"
MSG_NOT_RUNNING = "clusterd is not running on this node"

Runner = t.Callable[[t.List[str], str], t.Tuple[int, str, str]]


class AdminError(Exception):
    """cluster_admin refused a request or could not be run."""

    def __init__(self, code: str, message: str, problems: t.Sequence[t.Mapping[str, str]] = ()):
        self.code = code
        self.message = message
        self.problems = [dict(p) for p in problems]
        super().__init__(message)

    def fail_fields(self) -> dict[str, t.Any]:
        """Extra result fields for fail_json (msg is str(self))."""
        return {"error_code": self.code, "problems": self.problems}


def error_message(code: str, message: str) -> str:
    """The sentence a user sees for an error code of cluster_admin."""
    if code == "not_installed":
        return MSG_NOT_INSTALLED if not message else f"{MSG_NOT_INSTALLED}: {message}"
    if code == "not_running" and not message.startswith(MSG_NOT_RUNNING):
        return f"{MSG_NOT_RUNNING}: {message}"
    return message or f"cluster_admin refused the request ({code})"


class AdminClient:
    """One request per call to ``cluster_admin``."""

    def __init__(self, runner: Runner, command: str = ADMIN_COMMAND):
        self.runner = runner
        self.command = command

    def request(self, op: str, **fields: t.Any) -> dict[str, t.Any]:
        doc = {"v": REQUEST_VERSION, "op": op}
        doc.update(fields)
        rc, out, err = self.runner([self.command], json.dumps(doc, sort_keys=True))
        try:
            reply = json.loads(out) if out.strip() else None
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise AdminError("admin_failed", f"cluster_admin failed (rc={rc}) without a JSON "
                             f"reply: {(err or out).strip()[-500:]}")
        if not reply["ok"]:
            error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
            code = str(error.get("code", "admin_failed"))
            raise AdminError(code, error_message(code, str(error.get("message", ""))),
                             error.get("problems") or [])
        return reply


def admin_client(get_bin_path: t.Callable[..., str | None],
                 run_command: t.Callable[..., tuple[int, str, str]]) -> AdminClient:
    """An AdminClient on the module's node (``module.get_bin_path``, ``module.run_command``).

    Raises AdminError(not_installed) when cluster_admin is not found.
    """
    path = get_bin_path(ADMIN_COMMAND, opt_dirs=ADMIN_DIRS)
    if not path:
        raise AdminError("not_installed", MSG_NOT_INSTALLED)

    def runner(argv: list[str], data: str) -> tuple[int, str, str]:
        # Secrets travel on stdin only, never in argv.
        return run_command(argv, data=data, binary_data=True, check_rc=False)

    return AdminClient(runner, path)


def run_edit(client: AdminClient, edit: str, args: t.Mapping[str, t.Any],
             check: bool) -> dict[str, t.Any]:
    """Apply one config edit; returns the module result (changed, config_version, diff)."""
    reply = client.request("edit", edit=edit, args=dict(args), check=check)
    return {"changed": bool(reply.get("changed")),
            "config_version": reply.get("config_version"),
            "source": reply.get("source"),
            "diff": reply.get("diff") or {},
            "tree_warnings": [str(w) for w in reply.get("tree_warnings") or []],
            "pending": reply.get("pending")}


def edit_warnings(result: dict[str, t.Any]) -> list[str]:
    """The warnings a config module shows for ``run_edit``'s result (and takes out of it):
    RHCS parts clusterd accepts but does not use, what is accepted as rgmanager accepted it,
    and a file written while clusterd is stopped that the cluster has not accepted (the
    daemon keeps it as a pending proposal at its next start)."""
    found = list(unused_warnings(result.get("diff")))
    found += [str(w) for w in result.pop("tree_warnings", None) or []]
    pending = result.pop("pending", None)
    if isinstance(pending, dict) and pending.get("message"):
        found.append(str(pending["message"]))
    return found


def drop_none(value: t.Any) -> t.Any:
    """Options left unset (None) mean "leave alone": drop them, recursively."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value
