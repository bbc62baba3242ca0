"""clusterlab: the redhat.cluster lab of emulated nodes (see docs/lab.md)."""

from .errors import LabError, UsageError

__all__ = ["Lab", "LabError", "UsageError"]


def __getattr__(name: str) -> object:
    # Lazy, so the BMCs' power program (python -m clusterlab.power) imports little.
    if name == "Lab":
        from .lab import Lab
        return Lab
    raise AttributeError(name)
