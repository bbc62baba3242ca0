"""Pure renderers: /etc/hosts, ipmi_sim configs, nftables rulesets, the Ansible inventory,
and the apt-sources parser that finds the Debian mirror. Text in, text out."""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Iterable, Sequence

from .errors import LabError, UsageError
from .spec import BMC_CIPHER, BMC_PORT, BMC_USER, LabSpec, NodeSpec

DIRECTIONS = ("both", "in", "out")


def machine_id(prefix: str, name: str, generation: int = 0) -> str:
    """The node's /etc/machine-id: stable for a name, new for each server that replaced it
    (``generation`` counts the replacements: 0 is the server `up` made)."""
    seed = f"{prefix}/{name}" + (f"/{generation}" if generation else "")
    return hashlib.md5(seed.encode()).hexdigest()


def hosts_file(spec: LabSpec) -> str:
    """/etc/hosts for every node: all nodes (so each resolves its own name), BMCs, client."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             f"{spec.host_address}\tlabhost"]
    lines += [f"{n.address}\t{n.name}" for n in spec.nodes]
    lines += [f"{n.bmc_address}\t{n.name}-bmc" for n in spec.nodes]
    lines.append(f"{spec.client_address}\tclient")
    return "\n".join(lines) + "\n"


def lan_conf(spec: LabSpec, node: NodeSpec, password: str, power_cmd: str) -> str:
    """ipmi_sim lan.conf: RMCP+ on UDP 623 of the BMC address, one admin user, and the
    chassis_control program (without it ipmi_sim refuses power-off)."""
    auths = "none md2 md5 straight"
    return "\n".join([
        f'name "{spec.prefix}{node.name}bmc"',
        "set_working_mc 0x20",
        "  startlan 1",
        f"    addr {node.bmc_address} {BMC_PORT}",
        "    priv_limit admin",
        f"    allowed_auths_callback {auths}",
        f"    allowed_auths_user {auths}",
        f"    allowed_auths_operator {auths}",
        f"    allowed_auths_admin {auths}",
        f"    guid a123456789abcdefa1234567{node.index:08x}",
        "  endlan",
        f'  chassis_control "{power_cmd}"',
        f'  user 2 true "{BMC_USER}" "{password}" admin 10 {auths}',
        "",
    ])


def chassis_script(*, node: str, state_file: str, marker: str, log: str, host_netns: str,
                   veth: str, slow_command: str) -> str:
    """The BMC's chassis control program (POSIX sh, no secrets): ipmi_sim runs it with
    `get power`, `set power 0|1` or `set reset 1` appended. The first two are answered
    here, in milliseconds, like a real BMC; the others go to `slow_command` (python -m
    clusterlab.power PREFIX N). Truth comes from the lab's state file, which state.py
    writes with json.dump(indent=1, sort_keys=True) (the awk below reads that layout):
    on = power flag 1 and the recorded init (pid + start time, so a reused pid does not
    count) alive and no power-off pending. `set power 0` writes the pending marker, SIGKILLs
    the init and deletes the node's veth (its address vanishes) before returning; then
    `slow_command settle power`, detached and without our stdout/stderr (ipmi_sim waits for
    them to close), records power 0, removes the namespace and the marker. A boot settles
    first (node.boot), so it never races that bookkeeping."""
    q = shlex.quote
    return f"""#!/bin/sh
# Chassis control of the emulated BMC of {node}, written by cluster-lab (clusterlab.bmc).
# ipmi_sim runs it as: THIS get power | set power 0|1 | set reset 1
set -fu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
node={q(node)}
state={q(state_file)}
marker={q(marker)}
log={q(log)}
host_netns={q(host_netns)}
veth={q(veth)}

say() {{ echo "$(date '+%Y-%m-%d %H:%M:%S,%3N') chassis[$$] $node: $*" >>"$log" 2>/dev/null; }}

# "FLAG PID START": the node's power flag and its recorded init (0 when missing)
recorded() {{
    awk -F'"' -v node="$node" '
        {{ ind = match($0, /[^ ]/) - 1; val = $3; sub(/^: */, "", val); sub(/,$/, "", val) }}
        ind == 1 {{ top = $2 }}
        ind == 2 {{ sect = $2; if (top == "power" && $2 == node) flag = val }}
        ind == 3 && top == "procs" && sect == "init:" node {{
            if ($2 == "pid") pid = val; if ($2 == "start") start = val }}
        END {{ print (flag == "" ? 0 : flag), (pid == "" ? 0 : pid), (start == "" ? 0 : start) }}
    ' "$state" 2>/dev/null || echo 0 0 0
}}

# alive PID START: that very process runs (start time = /proc/PID/stat field 22, not a zombie)
alive() {{
    case $1 in ''|0|*[!0-9]*) return 1 ;; esac
    {{ read -r stat <"/proc/$1/stat"; }} 2>/dev/null || return 1
    set -- "$2" ${{stat##*) }}
    [ "${{21:-}}" = "$1" ] && [ "$2" != Z ] && [ "$2" != X ]
}}

if [ "${{1:-}}" = get ] && [ "${{2:-}}" = power ]; then
    power=0
    if [ ! -e "$marker" ]; then
        set -- $(recorded)
        [ "$1" = 1 ] && alive "$2" "$3" && power=1
    fi
    echo "power:$power"
    say "get power -> $power"
    exit 0
fi

if [ "${{1:-}}" = set ] && [ "${{2:-}}" = power ] && [ "${{3:-}}" = 0 ]; then
    set -- $(recorded)
    echo "$2 $3" >"$marker" || say "set power 0: cannot write $marker"  # get reads 0 now
    if alive "$2" "$3" && kill -KILL "$2"; then  # the power cut itself
        what="init $2 killed"
    else
        what="the recorded init was not running"
    fi
    if ip -n "$host_netns" link del "$veth" 2>/dev/null; then  # both ends: address gone
        what="$what, $veth deleted"
    fi
    say "set power 0: $what; settling in the background"
    setsid {slow_command} settle power </dev/null >/dev/null 2>&1 &
    exit 0
fi

exec {slow_command} "$@"
"""


EMU_FILE = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
"""


def host_guard_ruleset(spec: LabSpec) -> str:
    """Host nftables table: nothing is forwarded between the lab's links and the rest."""
    t = spec.nft_table
    pat = f'"{spec.prefix}-*"'
    return "\n".join([
        f"table inet {t} {{",
        "  chain forward {",
        "    type filter hook forward priority -10; policy accept;",
        f"    iifname {pat} oifname != {pat} drop",
        f"    oifname {pat} iifname != {pat} drop",
        "  }",
        "}",
        "",
    ])


def partition_targets(spec: LabSpec, node: NodeSpec,
                      peers: Sequence[str] | None) -> tuple[str, ...]:
    """Addresses a partitioned node loses: by default every other node and the floating
    range; with explicit peers, only those nodes. Host, client and BMCs stay reachable."""
    if peers is None:
        first, last = spec.floating_range
        return tuple(p.address for p in spec.peers_of(node)) + (f"{first}-{last}",)
    targets = []
    for name in peers:
        peer = spec.find(name)
        if peer.index == node.index:
            raise UsageError(f"bad peer {name!r}: a node cannot be partitioned from itself")
        targets.append(peer.address)
    if not targets:
        raise UsageError("bad --peers: give at least one node name")
    return tuple(targets)


def partition_ruleset(spec: LabSpec, targets: Iterable[str], direction: str) -> str:
    """The nftables table installed INSIDE a node's namespace to cut it off from targets."""
    if direction not in DIRECTIONS:
        raise UsageError(f"bad direction {direction!r}: use one of {', '.join(DIRECTIONS)}")
    elements = ", ".join(targets)
    t = f"{spec.prefix}-partition"
    lines = [f"table ip {t} {{"]
    if direction in ("both", "in"):
        lines += ["  chain input {", "    type filter hook input priority -10; policy accept;",
                  f"    ip saddr {{ {elements} }} drop", "  }"]
    if direction in ("both", "out"):
        lines += ["  chain output {", "    type filter hook output priority -10; policy accept;",
                  f"    ip daddr {{ {elements} }} drop", "  }"]
    lines += ["}", ""]
    return "\n".join(lines)


def ssh_common_args() -> str:
    return "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


def inventory(spec: LabSpec, key_path: str, password: str) -> dict:
    """Ansible YAML inventory: group `cluster` with every node and its BMC as host vars.
    The BMC password is a lab-only secret; the file is written with mode 0600."""
    hosts = {}
    for n in spec.nodes:
        hosts[n.name] = {
            "ansible_host": n.address,
            "cluster_lab_index": n.index,
            "cluster_lab_machine": n.machine,
            "cluster_lab_bmc_address": n.bmc_address,
            "cluster_lab_bmc_port": BMC_PORT,
            "cluster_lab_bmc_user": BMC_USER,
            "cluster_lab_bmc_password": password,
            "cluster_lab_bmc_cipher": BMC_CIPHER,
        }
    first, last = spec.floating_range
    return {"all": {
        "vars": {
            "cluster_lab_prefix": spec.prefix,
            "cluster_lab_host_address": spec.host_address,
            "cluster_lab_client_address": spec.client_address,
            "cluster_lab_client_netns": spec.client_netns,
            "cluster_lab_floating_first": first,
            "cluster_lab_floating_last": last,
        },
        "children": {"cluster": {
            "hosts": hosts,
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": key_path,
                "ansible_ssh_common_args": ssh_common_args(),
                "ansible_python_interpreter": "/usr/bin/python3",
            },
        }},
    }}


_LIST_LINE = re.compile(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)")


def mirror_from_sources(files: Iterable[tuple[str, str]], suite: str = "bookworm") -> str:
    """The first mirror URL serving `suite` in apt sources: deb822 `.sources` stanzas
    (Types/URIs/Suites) or one-line `.list` entries. files: (name, text) pairs."""
    for name, text in files:
        if name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                if "deb" in fields.get("types", "").split() and \
                        suite in fields.get("suites", "").split() and fields.get("uris"):
                    return fields["uris"].split()[0]
        elif name.endswith(".list"):
            for line in text.splitlines():
                m = _LIST_LINE.match(line)
                if m and m.group(2) == suite:
                    return m.group(1)
    raise LabError(f"no apt source for Debian {suite} found in /etc/apt/sources.list"
                   "(.d): add one, the lab image is built from the host's mirror")
