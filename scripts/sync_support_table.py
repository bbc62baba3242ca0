#!/usr/bin/env python3
"""Copy clusterd's RHCS support table into the redhat.cluster collection.

The collection cannot import clusterd, so module_utils/_clusterd/support.py holds a copy of
daemon/src/clusterd/conf/support_table.py (from ``HONOURED =`` to the end) between two
marker lines. Run this after changing the table; tests/collection/test_support_table.py
fails until the copy is equal:

    scripts/sync_support_table.py          # rewrite the copy
    scripts/sync_support_table.py --check  # exit 1 if the copy differs
"""

from __future__ import annotations

import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
TABLE = TOP / "daemon/src/clusterd/conf/support_table.py"
COPY = (TOP / "collections/ansible_collections/redhat/cluster/plugins/module_utils"
        / "_clusterd/support.py")
BEGIN = "# ---- the table: a copy of clusterd.conf.support_table, from HONOURED to the end ----\n"
END = "\n\n# ---- the walker"


def synced(table: str, copy: str) -> str:
    data = table[table.index('HONOURED = "honoured"'):].rstrip("\n") + "\n"
    head, rest = copy.split(BEGIN, 1)
    return head + BEGIN + data + rest[rest.index(END):]


def main(argv: list[str]) -> int:
    copy = COPY.read_text()
    new = synced(TABLE.read_text(), copy)
    if "--check" in argv:
        if new != copy:
            print(f"{COPY.relative_to(TOP)} differs from the table: run {Path(__file__).name}",
                  file=sys.stderr)
            return 1
        return 0
    if new != copy:
        COPY.write_text(new)
        print(f"updated {COPY.relative_to(TOP)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
