"""conf.get masks secrets unless root asks; a masked copy cannot be proposed back; a
proposal naming an untrusted program on this node is refused."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from clusterd.conf import parse
from clusterd.conf.secrets import MASK
from clusterd.control import protocol as p
from clusterd.errors import ControlError
from clusterd.node.ops import build_registry
from clusterd.node.proposal import check_proposal, refuse_untrusted_programs
from node_testdata import conf_bytes

LOCAL = "127.0.0.11"
SECRET = "s3cr3t-Pw"
DEVICE = "/cluster/fencedevices/fencedevice[@name='ipmi']"


def with_device(version: int, passwd: str = SECRET, extra: str = "") -> bytes:
    return conf_bytes(version, extra=(
        '<fencedevices><fencedevice name="ipmi" agent="fence_ipmilan" ipaddr="10.0.0.1" '
        f'login="admin" passwd="{passwd}" {extra}/></fencedevices>'))


class Node:
    def __init__(self, data: bytes) -> None:
        self.conf = parse(data)

    def running_conf(self) -> Any:
        return self.conf


def conf_get(node: Node, **args: Any) -> dict[str, Any]:
    spec, checked = build_registry(node).resolve(p.Request(1, p.OP_CONF_GET, args))
    return asyncio.run(spec.handler(checked, p.Peer(pid=1, uid=0, gid=0)))


def test_conf_get_masks_secrets_unless_asked_to_reveal():
    node = Node(with_device(3))
    masked = conf_get(node, text=True)
    assert SECRET not in masked["conf"] and f'passwd="{MASK}"' in masked["conf"]
    assert masked["masked"] is True and masked["sha256"] == node.conf.sha256
    revealed = conf_get(node, text=True, reveal_secrets=True)
    assert revealed["masked"] is False
    assert revealed["conf"] == node.conf.canonical_bytes().decode()
    assert "conf" not in conf_get(node)


def test_revealing_needs_the_root_role_whatever_the_op_needs():
    spec, args = build_registry(Node(with_device(3))).resolve(
        p.Request(1, p.OP_CONF_GET, {"text": True, "reveal_secrets": True}))
    assert spec.needs(args) == (p.Role.ROOT, "conf.get with reveal_secrets")
    assert spec.needs({"text": True, "reveal_secrets": False}) == (p.Role.READ, "conf.get")


def test_a_masked_copy_cannot_be_written_back():
    running = parse(with_device(3))
    with pytest.raises(ControlError) as info:
        check_proposal(running, with_device(4, passwd=MASK), local_name=LOCAL, parse=parse)
    assert info.value.code == p.E_INVALID_CONFIG
    assert info.value.message.startswith(
        f"proposed cluster.conf: {DEVICE} passwd: holds the mask '********' that conf.get "
        "shows instead of a secret; a masked copy cannot be written back: set the real value")
    verdict = check_proposal(running, with_device(4, passwd="n3w"), local_name=LOCAL,
                             parse=parse)
    assert verdict.changed


def test_a_mask_the_running_file_already_holds_does_not_block_changes():
    running = parse(with_device(3, passwd=MASK))
    assert check_proposal(running, with_device(4, passwd=MASK), local_name=LOCAL,
                          parse=parse).changed


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown test files")
def test_a_proposal_naming_an_untrusted_program_here_is_refused(tmp_path):
    script = tmp_path / "getpw"
    script.write_text("#!/bin/sh\necho pw\n")
    script.chmod(0o755)
    os.chown(script, 65534, 0)
    proposed = parse(with_device(4, extra=f'passwd_script="{script}"'))
    with pytest.raises(ControlError) as info:
        refuse_untrusted_programs(proposed)
    assert info.value.code == p.E_INVALID_CONFIG
    assert info.value.message == (
        f"proposed cluster.conf: {DEVICE}: passwd_script='{script}' cannot be run as root: "
        f"{script} is owned by uid 65534, not root; fix the owner and mode (chown root, "
        "chmod go-w) or name another program")
    os.chown(script, 0, 0)
    refuse_untrusted_programs(proposed)
