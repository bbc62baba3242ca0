"""Rows written to MariaDB through the floating address survive the owner's power-off.

From molecule/database/verify.yml, with the venv's python: waits for ``db`` started, makes
the client's account and table through the server's socket on the owner, writes ROWS rows
through 198.18.0.51 (each committed, so acknowledged, before the next), powers the owner
off through its BMC, waits until another node runs ``db``, and reads the rows back through
the same address: every acknowledged row must be there once, CHECK TABLE clean, and a new
write accepted. Prints one JSON summary line; exit 1 if anything is missing or late.
"""

from __future__ import annotations

import json
import sys
import time

import pymysql
from clusterlab.demo_db import create_account
from clusterlab.errors import LabError
from clusterlab.lab import Lab

SERVICE = "service:db"
ADDRESS = "198.18.0.51"
ROWS = 200


def _db(lab: Lab, exclude: str | None = None) -> dict | None:
    """db's row in clustat, asked of the first powered node other than ``exclude``."""
    for node in lab.nodes:
        if node.name == exclude or not lab.is_on(node.name):
            continue
        done = lab.exec(node.name, ["clustat", "--format", "json"], check=False, timeout=20)
        if done.returncode == 0:
            services = json.loads(done.stdout)["services"]
            return next((s for s in services if s["name"] == SERVICE), None)
    return None


def _started_owner(lab: Lab, exclude: str | None = None) -> str | None:
    row = _db(lab, exclude)
    if row and row["state"] == "started" and row["owner"] != exclude:
        return row["owner"]
    return None


def _connect(password: str) -> pymysql.connections.Connection:
    return pymysql.connect(host=ADDRESS, port=3306, user="molecule", password=password,
                           database="molecule", connect_timeout=2, read_timeout=30,
                           autocommit=True)


def main() -> int:
    lab = Lab.load()
    summary: dict = {"ok": False, "missing": None}
    try:
        owner = lab.wait_for(lambda: _started_owner(lab), 180, "db started", interval=1.0)
        summary["owner"] = owner
        password = create_account(lab, owner, "molecule")
        conn = _connect(password)
        with conn.cursor() as cur:
            for i in range(ROWS):
                cur.execute("INSERT INTO writes (id) VALUES (%s)", (i,))
        conn.close()
        off_at = time.monotonic()
        lab.power(owner, "off")
        summary["new_owner"] = lab.wait_for(lambda: _started_owner(lab, owner), 120,
                                            f"db started on a node other than {owner}",
                                            interval=0.5)
        summary["recovered_s"] = round(time.monotonic() - off_at, 2)
        conn = lab.wait_for(lambda: _try_connect(password), 60, "MariaDB answering again")
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM writes")
            ids = [row[0] for row in cur.fetchall()]
            cur.execute("CHECK TABLE writes")
            check = cur.fetchall()
            cur.execute("INSERT INTO writes (id) VALUES (%s)", (ROWS,))
        conn.close()
        summary["missing"] = sorted(set(range(ROWS)) - set(ids))
        summary["duplicates"] = len(ids) - len(set(ids))
        summary["check_table"] = [list(r) for r in check]
        summary["ok"] = (summary["missing"] == [] and summary["duplicates"] == 0
                         and check[-1][2:] == ("status", "OK"))
    except (LabError, pymysql.MySQLError) as exc:
        summary["why"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


def _try_connect(password: str) -> pymysql.connections.Connection | None:
    try:
        return _connect(password)
    except pymysql.MySQLError:
        return None


if __name__ == "__main__":
    sys.exit(main())
