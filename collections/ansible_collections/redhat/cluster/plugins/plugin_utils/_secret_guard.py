# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Private to the redhat.cluster collection: may change at any time.

"""The controller side of the collection's secret handling (the modules' action plugins).

Ansible hides the values of ``no_log`` options everywhere, but prints every other option in
the module's invocation (``-v`` and up) and the module logs it to the node's syslog as soon
as it starts. So a secret in a plain option (``params.passwd``) must be stopped before the
module is sent: :class:`SecretGuardAction` checks the templated arguments with the
collection's one secret rule (``module_utils/_clusterd/secrets.py``) and fails the task,
naming the key and the no_log option to use, never the value. Otherwise it runs the module
as Ansible's ``normal`` action does (check mode, diff and async unchanged).

A module whose result carries secrets on request (``cluster_info`` with
``include_secrets``) has its result marked ``_ansible_no_log``: Ansible then censors it in
every output as for a ``no_log`` task, while ``register`` still receives it.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.secrets import (
    check_args,
)

# module -> option that, when true, makes its result carry secrets
SECRET_RESULT_OPTION = {"cluster_info": "include_secrets"}


def module_name(action: str) -> str:
    """``redhat.cluster.fence_device`` (or ``fence_device``) -> ``fence_device``."""
    return action.rsplit(".", 1)[-1]


def result_has_secrets(module: str, args: t.Mapping[str, t.Any]) -> bool:
    option = SECRET_RESULT_OPTION.get(module)
    return bool(option) and boolean(args.get(option, False), strict=False)


class SecretGuardAction(ActionBase):
    """Refuse misplaced secrets on the controller, then run the module."""

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        module = module_name(self._task.action)
        misplaced = check_args(module, self._task.args)
        if misplaced:
            # The module is never sent: no invocation to print, nothing in the node's syslog.
            result.update(failed=True, changed=False, msg=misplaced[0])
            return result
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result = merge_hash(result, self._execute_module(task_vars=task_vars,
                                                         wrap_async=wrap_async))
        if result_has_secrets(module, self._task.args):
            result["_ansible_no_log"] = True
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
