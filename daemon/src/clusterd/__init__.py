"""clusterd: one lean daemon per node for membership, quorum, config, fencing and services."""

__version__ = "0.1.0"
