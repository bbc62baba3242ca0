"""The slow half of the BMCs' chassis control. ipmi_sim runs the node's chassis script
(bmc.chassis_path, lan.conf `chassis_control`), which answers `get power` and does the
power cut of `set power 0` itself, without Python; the rest comes here:

    python -m clusterlab.power PREFIX N set power 1      -> boots the node if it is off
    python -m clusterlab.power PREFIX N set reset 1      -> power-off, then boot
    python -m clusterlab.power PREFIX N settle power     -> the bookkeeping of the script's
                                                            power-off (run detached by it)
    python -m clusterlab.power PREFIX N get power        -> power:0 or power:1 (same answer
                                                            as the script; not used by it)
    python -m clusterlab.power PREFIX N set power 0      -> the whole power-off in Python

It runs inside the BMC's namespace, so it first joins the host's network namespace (named
<prefix>-host by `up`). Power-off SIGKILLs the node's init and removes its network; power-on
settles a pending power-off, recreates the network and boots the container detached
(ipmi_sim waits for our stdout to close, so nothing we start may keep it); a node whose
server died for good (Lab.die) is not booted: the power stays off until Lab.replace. Logs go to
/run/<prefix>-lab/power.log only (the script logs there too)."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import sys

from .errors import LabError
from .spec import LabSpec

logger = logging.getLogger(__name__)
CLONE_NEWNET = 0x40000000


def _join_host_netns(spec: LabSpec) -> None:
    path = f"/run/netns/{spec.host_netns_alias}"
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise LabError(f"setns({path}) failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


def control(spec: LabSpec, index: int, verb: str, item: str, value: str | None) -> str:
    """Carry out one chassis request; return what to print."""
    from . import node as node_mod

    node = spec.node(index)
    if verb == "get":
        if item == "power":
            return f"power:{1 if node_mod.is_on(spec, node) else 0}"
        return ""
    if verb == "set" and item == "power" and value in ("0", "1"):
        if value == "0":
            node_mod.power_off(spec, node)
        elif node_mod.is_dead(spec, node):
            logger.info("%s: dead for good, the power stays off", node.name)
        elif not node_mod.is_on(spec, node):
            node_mod.boot(spec, node)
        return ""
    if verb == "settle" and item == "power":
        node_mod.settle_power_off(spec, node)
        return ""
    if verb == "set" and item == "reset" and value == "1":
        node_mod.power_off(spec, node)
        if node_mod.is_dead(spec, node):
            logger.info("%s: dead for good, the power stays off", node.name)
        else:
            node_mod.boot(spec, node)
        return ""
    logger.info("%s: ignoring chassis request %s %s %s", node.name, verb, item, value)
    return ""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 4:
        print("usage: python -m clusterlab.power PREFIX N get|set|settle ITEM [VALUE]",
              file=sys.stderr)
        return 2
    prefix, index, verb, item = args[:4]
    value = args[4] if len(args) > 4 else None
    try:
        spec = _spec(prefix)
        os.makedirs(spec.state_dir, exist_ok=True)
        logging.basicConfig(filename=f"{spec.state_dir}/power.log", level=logging.INFO,
                            format="%(asctime)s power[%(process)d] %(message)s")
        logger.info("node%s: %s %s %s", index, verb, item, value or "")
        _join_host_netns(spec)
        out = control(spec, int(index), verb, item, value)
    except Exception:  # ipmi_sim only sees the exit code: log the cause
        logger.exception("node%s: chassis %s %s %s failed", index, verb, item, value)
        return 1
    if out:
        print(out, flush=True)
    return 0


def _spec(prefix: str) -> LabSpec:
    """The lab's spec, from its state file (addresses depend on node count and subnet)."""
    with open(f"/run/{prefix}-lab/state.json", encoding="utf-8") as f:
        data = json.load(f)
    return LabSpec(prefix=prefix, node_count=int(data["nodes"]), subnet=data["subnet"])


if __name__ == "__main__":
    sys.exit(main())
