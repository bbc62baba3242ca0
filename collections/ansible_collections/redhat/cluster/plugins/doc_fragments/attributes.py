# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The attributes every redhat.cluster module documents. Reference it as
# redhat.cluster.attributes (plus one of the variants below where it applies).

from __future__ import annotations


class ModuleDocFragment:

    # Standard fragment: the three attributes every module declares.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying the cluster.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the cluster controlled by the module has not changed in a relevant way.
"""

    # Use with the standard fragment for modules that change cluster.conf.
    CONFIG = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - The change is computed by clusterd's config model and not proposed or written.
  diff_mode:
    support: full
    details:
      - The diff is C(cluster.conf) before and after, with secret parameters masked.
  idempotent:
    support: full
    details:
      - The same parameters give C(changed=false) and no C(config_version) bump, on one node or on every node.
notes:
  - The module runs on a cluster node and calls C(cluster_admin) from clusterd. When clusterd runs,
    the change is proposed to the daemon, which validates it, writes it and propagates it to every node.
    When clusterd is not running, the local C(/etc/cluster/cluster.conf) is edited atomically (bootstrap).
  - "Use C(run_once: true) or run on every node: both give the same result."
requirements:
  - clusterd (its C(cluster_admin) command) on the managed node.
"""

    # Use with the standard fragment for read-only modules.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state.
requirements:
  - clusterd (its C(cluster_admin) command) on the managed node.
"""

    # Use with the standard fragment for modules that act through the running daemon.
    ACTION = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - The current state is read from clusterd and the change is predicted, not made.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Nothing is done when the cluster already shows the requested state.
requirements:
  - clusterd (its C(cluster_admin) command) on the managed node, with the daemon running.
"""

    # Use with CONFIG for modules that take free-form parameters (they have an action plugin).
    SECRETS = r"""
options: {}
attributes:
  action:
    support: full
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    details:
      - The action plugin refuses, on the controller, any secret-named key outside the module's C(no_log) options, so
        that the value never reaches the node, its syslog or the output. The module itself refuses it again when called without it.
notes:
  - Secrets are taken only from C(no_log) options. Ansible hides their values everywhere, C(-vvv) included, but it prints
    every other option in the module invocation and logs it to the node's syslog. A secret-named key in a plain option
    (C(params), C(attrs)) is therefore refused before the module is sent, with a message naming the key (never its value)
    and the option to use, for example C(params.passwd looks like a secret) followed by C(pass it in secret_params (no_log) instead).
  - A name is secret when it contains C(passwd), C(password), C(secret), C(token), C(key), C(community) or C(credential),
    or ends in C(_kg); names ending in C(_script), C(file) or C(path) name a program or a file that holds the secret and
    are not secret. This is clusterd's rule; clusterd masks the same names in diffs, exports and messages.
  - Ansible's C(display_args_to_stdout) setting prints task arguments as written, before any plugin runs. With it enabled,
    give secrets as templates (from Vault) so that only the template text is printed, or set C(no_log) on the task.
"""
