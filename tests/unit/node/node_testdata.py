"""Small cluster.conf builders shared by the node tests."""

from __future__ import annotations


def conf_bytes(version: int = 1, names=("127.0.0.11", "127.0.0.12", "127.0.0.13"),
               name: str = "alpha", extra: str = "") -> bytes:
    nodes = "".join(f'<clusternode name="{n}" nodeid="{i}"/>' for i, n in enumerate(names, 1))
    return (f'<?xml version="1.0"?><cluster name="{name}" config_version="{version}">'
            f"<clusternodes>{nodes}</clusternodes>{extra}</cluster>").encode()
