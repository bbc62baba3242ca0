# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of redhat.cluster.cluster_service: see plugin_utils/_secret_guard.py."""

from __future__ import annotations

from ansible_collections.redhat.cluster.plugins.plugin_utils._secret_guard import (
    SecretGuardAction,
)


class ActionModule(SecretGuardAction):
    """Runs cluster_service; secrets only from its no_log options, never printed."""
