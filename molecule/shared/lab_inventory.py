#!/usr/bin/env python3
"""Ansible inventory script: the lab's inventory (/run/rhc-lab/inventory.yml, written by
`cluster-lab up`) as JSON, or an empty inventory while no lab is up. Molecule links it next
to its own inventory (it needs a link target that exists before `create` runs).
RHC_LAB_INVENTORY names another file; without it, RHC_LAB_PREFIX picks the lab
(/run/<prefix>-lab/inventory.yml), as it does for `cluster-lab`."""

import json
import os
import sys
from pathlib import Path

import yaml

PATH = Path(os.environ.get("RHC_LAB_INVENTORY")
            or f"/run/{os.environ.get('RHC_LAB_PREFIX') or 'rhc'}-lab/inventory.yml")


def to_script(data: dict) -> dict:
    out: dict = {"_meta": {"hostvars": {}}}

    def walk(name: str, group: dict, parent_vars: dict) -> None:
        group = group or {}
        hosts = group.get("hosts") or {}
        out[name] = {"hosts": sorted(hosts), "vars": group.get("vars") or {},
                     "children": sorted(group.get("children") or {})}
        for host, hostvars in hosts.items():
            out["_meta"]["hostvars"].setdefault(host, {}).update(hostvars or {})
        for child, sub in (group.get("children") or {}).items():
            walk(child, sub, {})

    for name, group in (data or {}).items():
        walk(name, group, {})
    return out


def main() -> int:
    if "--host" in sys.argv:
        print("{}")
        return 0
    data = yaml.safe_load(PATH.read_text()) if PATH.exists() else {}
    print(json.dumps(to_script(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
