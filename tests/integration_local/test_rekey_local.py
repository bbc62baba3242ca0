"""Three real clusterd processes on loopback change their cluster key without a hitch (S5).

Capabilities, each with deadlines (never fixed sleeps):
  When a new key is installed as authkey.next and every daemon reloads its keys, then one
  node activates it while the others still send with the old key, then the others do,
  and the old key is removed everywhere, Then no view changes, no node restarts, no peer
  is suspected, no packet fails authentication, and every node sends and hears the new
  key. A daemon refuses to start on a key shorter than 128 bytes, naming the file and the
  size.
The loopback nodes share one key path, so "install on every node" is one file here and
the per-node steps are the per-daemon reloads.
Needs root (the daemon requires a root-owned authkey), not the lab.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from localcluster_harness import PY, LocalCluster, Node, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="clusterd needs root (authkey "
                                "owned by root, control socket)")


def _json(node: Node, *args: str) -> dict:
    out = node.admin("--format", "json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _state(c: LocalCluster) -> list[tuple]:
    """What must not change during a rekey: each node's view epoch, members and
    incarnation."""
    out = []
    for node in c.nodes:
        doc = node.status()
        out.append((doc["view"]["epoch"], tuple(doc["view"]["members"]),
                    doc["local"]["incarnation"], doc["quorum"]["quorate"]))
    return out


def test_rekey_changes_no_membership_and_suspects_no_one(cluster):
    c = cluster
    c.start_all()
    for node in c.nodes:
        wait_until(f"{node.addr}: 3 members Online and Quorate",
                   lambda node=node: c.members_online(node))
    key = c.root / "authkey"
    before = _state(c)
    marks = {n.addr: n.log.stat().st_size for n in c.nodes}
    old_id = _json(c.nodes[0], "key", "status")["active"]

    gen = c.nodes[0].admin("--format", "json", "keygen", str(key) + ".next")
    assert gen.returncode == 0, gen.stderr
    new_id = json.loads(gen.stdout)["id"]
    assert new_id != old_id and (os.stat(str(key) + ".next").st_mode & 0o777) == 0o400
    for node in c.nodes:                                     # step 1: accept both
        doc = _json(node, "key", "reload")
        assert doc["active"] == old_id
        assert [k["id"] for k in doc["accepted"]] == [new_id]

    n1, n2, n3 = c.nodes
    doc = _json(n1, "key", "activate")                       # step 2, node 1 first
    assert doc["active"] == new_id and [k["id"] for k in doc["accepted"]] == [old_id]
    wait_until("node 2 hears node 1 on the new key",
               lambda: _json(n2, "key", "status")["peers"][n1.addr] == new_id)
    assert _json(n1, "key", "status")["peers"][n2.addr] == old_id  # mixed, and fine
    for node in (n2, n3):                                    # the files moved already
        assert _json(node, "key", "reload")["active"] == new_id
    for node in c.nodes:
        wait_until(f"{node.addr}: every peer on the new key",
                   lambda node=node: set(_json(node, "key", "status")["peers"].values())
                   == {new_id})

    os.remove(str(key) + ".old")                             # step 3: old key gone
    for node in c.nodes:
        doc = _json(node, "key", "reload")
        assert doc["active"] == new_id and doc["accepted"] == []
    accepted = [node.status()["wire"]["accepted"] for node in c.nodes]
    wait_until("packets still flow under the new key alone",
               lambda: all(node.status()["wire"]["accepted"] > a + 20
                           for node, a in zip(c.nodes, accepted)))

    assert _state(c) == before
    for node in c.nodes:
        status = node.status()
        assert status["wire"]["key"] == new_id
        assert "bad mac" not in status["wire"]["drops"], status["wire"]
        with open(node.log, "rb") as fh:
            fh.seek(marks[node.addr])
            text = fh.read().decode(errors="replace")
        assert not re.search(r"silent for|quorum lost|restarted|proposing", text), text
        assert f"sending with {new_id}" in text
        for secret_hint in (key.read_bytes()[:16].hex(),):
            assert secret_hint not in text


def test_a_short_key_is_refused_at_start_naming_the_file_and_size(tmp_path):
    c = LocalCluster(tmp_path)
    short = tmp_path / "short.key"
    short.write_bytes(os.urandom(64))
    short.chmod(0o400)
    node = c.nodes[0]
    out = subprocess.run(
        [PY, "-m", "clusterd.cli.clusterd", "--foreground", "--config", str(node.conf),
         "--authkey", str(short), "--node", node.addr, "--control-socket", node.sock,
         "--state-dir", str(node.home / "state")],
        capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 1
    assert f"authkey {short} holds 64 bytes, fewer than the 128 required" in out.stderr
