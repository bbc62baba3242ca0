"""Config (version, hash) agreement and the pull protocol (sans-IO)."""

from clusterd.configsync.core import ConfigSyncCore
from clusterd.configsync.model import Running, ValidateConfig, Validator, sha256_hex

__all__ = ["ConfigSyncCore", "Running", "ValidateConfig", "Validator", "sha256_hex"]
