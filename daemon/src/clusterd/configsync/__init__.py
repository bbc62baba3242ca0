"""Config (version, hash) agreement and the pull protocol (sans-IO)."""

from clusterd.configsync.core import ConfigSyncCore, Running, Validator, sha256_hex

__all__ = ["ConfigSyncCore", "Running", "Validator", "sha256_hex"]
