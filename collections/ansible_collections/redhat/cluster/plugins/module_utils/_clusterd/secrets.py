# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Private to the redhat.cluster collection: may change at any time.

"""Which parameters are secrets, and where the collection refuses them (pure).

The rule is clusterd's one secret-name rule (``clusterd.truth.is_secret_param``): a fence
or resource parameter is secret when its name, lower-cased with ``-`` read as ``_``,
contains one of :data:`SECRET_WORDS` or ends in one of :data:`SECRET_ENDINGS` (``key``,
IPMI ``_kg``), except names ending in one of :data:`NOT_SECRET_SUFFIXES`, which name a
program or a file holding the secret (``passwd_script``, ``keyfile``), not the secret
itself. The collection cannot import clusterd; tests/collection/test_secret_rule.py keeps
this copy equal to clusterd's, data and code.

A secret reaches a module only through an option declared ``no_log`` (``secret_params``,
``secret_attrs``): Ansible then hides it in the invocation, the node's syslog and every
result. :func:`plain_secrets` finds secret-named keys anywhere else in a module's
arguments; the action plugins refuse those on the controller, before anything leaves it,
and the modules refuse them again for callers that bypass the action plugin.
"""

from __future__ import annotations

import re
import typing as t

from ansible.module_utils.common.validation import check_type_dict

MASKED = "********"
SECRET_WORDS = ("passwd", "password", "secret", "token", "community", "credential")
SECRET_ENDINGS = ("key", "_kg")
NOT_SECRET_SUFFIXES = ("_script", "file", "path")

# Free-form parameter dicts -> the no_log option beside them that takes their secrets.
SECRET_OPTION_OF = {"params": "secret_params", "attrs": "secret_attrs"}

# Modules that take free-form parameters -> where their no_log options sit (list indexes
# written []). The action plugins and the modules refuse secrets found anywhere else; a
# unit test checks this table against each module's argument_spec.
NO_LOG_OPTIONS = {
    "fence_device": ("secret_params", "methods[].devices[].secret_params",
                     "unfence[].secret_params"),
    "cluster_resource": ("secret_attrs",),
    "cluster_service": (),
}
# Advice where a module has no no_log option for a secret.
NO_OPTION_ADVICE = {
    "cluster_service": ("cluster_service takes no secrets; a resource that needs one is "
                        "defined with redhat.cluster.cluster_resource, its secret in "
                        "secret_attrs (no_log), and referenced here as {type, ref}"),
}


def is_secret_param(name: str) -> bool:
    """True when a parameter named ``name`` holds a secret value (module docstring)."""
    n = name.strip().lower().replace("-", "_")
    if n.endswith(NOT_SECRET_SUFFIXES):
        return False
    return n.endswith(SECRET_ENDINGS) or any(word in n for word in SECRET_WORDS)


def split_secrets(params: t.Mapping[str, t.Any]) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """Parameters -> (plain, secret) by the rule."""
    plain: dict[str, t.Any] = {}
    secret: dict[str, t.Any] = {}
    for key, value in params.items():
        (secret if is_secret_param(str(key)) else plain)[key] = value
    return plain, secret


class PlainSecret(t.NamedTuple):
    """A secret-named key outside a no_log option: where it is and where it belongs."""

    path: str            # e.g. methods[0].devices[1].params.passwd
    option: str | None   # e.g. methods[0].devices[1].secret_params; None: the module has none
    value: t.Any


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def shape(path: str) -> str:
    """``methods[0].devices[1].secret_params`` -> ``methods[].devices[].secret_params``."""
    return re.sub(r"\[\d+\]", "[]", path)


def _option_for(container: str, no_log: t.AbstractSet[str]) -> str | None:
    """The no_log option that should hold a secret found in the dict at ``container``."""
    parent, _dot, last = container.rpartition(".")
    if last in SECRET_OPTION_OF:
        candidates = [_join(parent, SECRET_OPTION_OF[last])]
    else:
        candidates = [_join(container, opt) for opt in SECRET_OPTION_OF.values()]
    return next((c for c in candidates if shape(c) in no_log), None)


def _as_dict(value: str) -> t.Any:
    """A dict option given as a string (JSON or k=v), as Ansible will convert it."""
    try:
        return check_type_dict(value)
    except (TypeError, ValueError):
        return value  # Ansible refuses it too, before the module's code runs


def _walk(value: t.Any, path: str, no_log: t.AbstractSet[str],
          found: list[PlainSecret]) -> None:
    if isinstance(value, str) and path.rpartition(".")[2] in SECRET_OPTION_OF:
        value = _as_dict(value)
    if isinstance(value, t.Mapping):
        for key, item in value.items():
            here = _join(path, str(key))
            if shape(here) in no_log:
                continue
            if is_secret_param(str(key)) and item not in (None, "", {}, []):
                found.append(PlainSecret(here, _option_for(path, no_log), item))
                continue  # the whole value is the secret
            _walk(item, here, no_log, found)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", no_log, found)


def plain_secrets(args: t.Mapping[str, t.Any],
                  no_log: t.Iterable[str] = ()) -> list[PlainSecret]:
    """Every secret-named key of ``args`` outside the module's no_log options.

    ``no_log`` lists where the module's no_log options sit, list indexes written ``[]``
    (``secret_params``, ``methods[].devices[].secret_params``); a finding whose natural
    option is not among them gets ``option=None``. Empty values are not reported.
    """
    found: list[PlainSecret] = []
    _walk(args, "", frozenset(no_log), found)
    return found


def refusal(found: t.Sequence[PlainSecret], module: str = "") -> str:
    """One message naming every misplaced secret (never its value) and where it goes."""
    parts = [f"{item.path} looks like a secret: pass it in {item.option} (no_log) instead"
             for item in found if item.option]
    homeless = [item.path for item in found if not item.option]
    if homeless:
        names = (homeless[0] if len(homeless) == 1
                 else ", ".join(homeless[:-1]) + " and " + homeless[-1])
        verb = "looks like a secret" if len(homeless) == 1 else "look like secrets"
        advice = NO_OPTION_ADVICE.get(module, f"{module or 'this module'} takes no secrets")
        parts.append(f"{names} {verb}: {advice}")
    return "; ".join(parts)


def check_args(module: str, args: t.Mapping[str, t.Any]) -> tuple[str, list[str]] | None:
    """None when ``args`` of ``module`` hold no secret outside a no_log option, else the
    refusal message and the misplaced values (to mask them in whatever is printed)."""
    if module not in NO_LOG_OPTIONS:  # no free-form parameters: Ansible checks them all
        return None
    found = plain_secrets(args, NO_LOG_OPTIONS[module])
    if not found:
        return None
    return refusal(found, module), secret_values(found)


def secret_values(found: t.Iterable[PlainSecret]) -> list[str]:
    """The string forms of the misplaced values (for AnsibleModule.no_log_values)."""
    out: list[str] = []
    for item in found:
        stack = [item.value]
        while stack:
            value = stack.pop()
            if isinstance(value, t.Mapping):
                stack.extend(value.values())
            elif isinstance(value, (list, tuple)):
                stack.extend(value)
            elif value not in (None, ""):
                out.append(str(value))
    return out
