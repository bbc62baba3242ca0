"""`make demo` until the cluster capabilities land: bring the lab up (or use the one that is
up), show the nodes and their BMCs, and say how to explore and tear down."""

from __future__ import annotations

import sys

from .cli import _print_status
from .errors import LabError
from .lab import Lab


def main() -> int:
    try:
        try:
            lab = Lab.load()
            print("demo: using the lab that is already up")
        except LabError:
            lab = Lab.up(progress=lambda msg: print(f"demo: {msg}", flush=True))
        print()
        _print_status(lab.status(), as_json=False)
        print()
        print("BMCs (IPMI over LAN, RMCP+ cipher 3; password in the inventory, lab-only):")
        for node in lab.nodes:
            bmc = lab.bmc(node.name)
            print(f"  {node.name}: {bmc.address}:{bmc.port} user {bmc.user}")
        print(f"""
Explore:
  .venv/bin/cluster-lab exec node1 -- systemctl status
  $(.venv/bin/cluster-lab ssh node2)
  .venv/bin/cluster-lab power node3 off; .venv/bin/cluster-lab power node3 on
  .venv/bin/cluster-lab partition node1; .venv/bin/cluster-lab heal node1
  .venv/bin/ansible -i {lab.inventory_path} cluster -m ansible.builtin.ping
Tear down:
  make lab-down   (or .venv/bin/cluster-lab down)
More: docs/lab.md""")
    except LabError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
