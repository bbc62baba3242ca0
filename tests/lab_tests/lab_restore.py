"""Shared by the lab fixtures and the lab test modules (a uniquely named module: several
``conftest`` modules exist in this tree, so ``from conftest import ...`` is ambiguous)."""

from __future__ import annotations

from clusterlab import Lab


def restore(lab: Lab) -> None:
    """Power every node on (waiting until each has booted; a node that died for good is
    replaced by a bare server) and heal every partition."""
    for node in lab.nodes:
        if lab.is_dead(node.name):
            lab.replace(node.name)
        elif not lab.is_on(node.name):
            lab.power(node.name, "on")
        else:
            lab.wait_ready(node.name)   # on, but maybe still booting after a fence's reboot
        lab.heal(node.name)
