"""Runs ``ip`` agent steps inside a network namespace (``ip netns exec NS python
ip_scenario.py ADDRESS STEP...``) and prints one JSON document with the results.

Steps: start, stop, status, announce, linkdown, linkup (rhcv0), show (``ip -o addr``).
ARP frames seen on the peer end (rhcv1) while the steps ran are reported as ``arp``.
Not a test module: test_agent_ip.py drives it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

from clusterd.resources.agents.ip import IpAgent


def arp_frames(sock: socket.socket) -> list[dict[str, str]]:
    frames = []
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        try:
            frame = sock.recv(2048)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if frame[12:14] == b"\x08\x06":
            arp = frame[14:42]
            frames.append({"op": str(int.from_bytes(arp[6:8], "big")),
                           "src_mac": arp[8:14].hex(":"),
                           "sender": socket.inet_ntoa(arp[14:18]),
                           "target": socket.inet_ntoa(arp[24:28]),
                           "eth_dst": frame[0:6].hex(":")})
    return frames


def set_link(state: str) -> None:
    subprocess.run(["ip", "link", "set", "rhcv0", state], check=True)


def show() -> list[str]:
    out = subprocess.run(["ip", "-o", "addr", "show", "dev", "rhcv0"], check=True,
                         capture_output=True, text=True).stdout
    return [line.split()[3] for line in out.splitlines() if " inet " in line]


def read_mac() -> str:
    with open("/sys/class/net/rhcv0/address") as handle:
        return handle.read().strip()


async def main(address: str, steps: list[str]) -> dict:
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    sniff.bind(("rhcv1", 0))
    sniff.setblocking(False)
    agent = IpAgent({"address": address}, garp_count=1)
    results = []
    for step in steps:
        if step in ("linkdown", "linkup"):
            await asyncio.to_thread(set_link, "down" if step == "linkdown" else "up")
            results.append({"step": step})
        elif step == "show":
            results.append({"step": step, "addrs": await asyncio.to_thread(show)})
        else:
            result = await getattr(agent, step)()
            results.append({"step": step, "rc": result.rc.name, "message": result.message,
                            "duration": result.duration})
    await agent.close()
    return {"results": results, "arp": arp_frames(sniff), "mac": await asyncio.to_thread(read_mac)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2:]))))
