# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Private to the redhat.cluster collection: may change at any time.

"""The one tail of every module's ``main()``: :func:`run_module`.

A module's ``main()`` builds its ``AnsibleModule`` (the argument_spec stays in the module,
where sanity tests and ansible-doc read it) and hands it over with the module's name and
its ``run(client, params, check_mode) -> result``. Nothing here imports AnsibleModule;
tests pass a stand-in with the attributes used here (``params``, ``check_mode``,
``_diff``, ``no_log_values``, ``get_bin_path``, ``run_command``, ``warn``, ``fail_json``,
``exit_json``; the last two end the process).
"""

from __future__ import annotations

import typing as t

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.admin import (
    AdminClient,
    AdminError,
    admin_client,
    edit_warnings,
)
from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.secrets import (
    check_args,
)

Params = t.Dict[str, t.Any]
Result = t.Dict[str, t.Any]
Run = t.Callable[[AdminClient, Params, bool], Result]
# Option combinations an argument_spec cannot express: the refusal message, or None.
Refusal = t.Callable[[Params], t.Optional[str]]
# What a module reports of its own result before it exits (may warn or fail_json).
Report = t.Callable[[t.Any, Result], None]


def run_module(module: t.Any, name: str, run: Run, refuse: Refusal | None = None,
               report: Report | None = None) -> None:
    """Run ``run`` on this node through ``cluster_admin`` and exit with its result.

    In order:

    1. A secret-named key outside the module's no_log options (``secrets.NO_LOG_OPTIONS``
       under ``name``) fails the module, naming where it goes; its value is masked in
       everything printed. The action plugin refuses it first, on the controller; a direct
       call of the module ends here.
    2. ``refuse(params)``, when given, fails the module with its message.
    3. ``run(client, params, check_mode)``; an :class:`AdminError` (cluster_admin missing,
       or clusterd refusing) fails the module with ``msg``, ``error_code`` and
       ``problems``.
    4. ``report(module, result)``, when given.
    5. The warnings of a config edit (``admin.edit_warnings``, taken out of the result;
       none for a result that holds no edit) are shown, ``diff`` is dropped unless the task
       runs in diff mode (the whole cluster.conf twice: only when asked for), and the
       module exits with the result.
    """
    misplaced = check_args(name, module.params)
    if misplaced:
        message, values = misplaced
        module.no_log_values.update(values)
        module.fail_json(msg=message)
    refusal = refuse(module.params) if refuse else None
    if refusal:
        module.fail_json(msg=refusal)
    try:
        client = admin_client(module.get_bin_path, module.run_command)
        result = run(client, module.params, module.check_mode)
    except AdminError as exc:
        module.fail_json(msg=str(exc), **exc.fail_fields())
    if report:
        report(module, result)
    for warning in edit_warnings(result):
        module.warn(warning)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)
