"""No secret value is ever printed by the collection (issue 13 item 7).

secrets_vvv.yml runs every module of redhat.cluster at -vvv against a real one-node clusterd
on 127.0.0.1 (started here, stopped by its PID) with a distinct secret in every position
a module has: its no_log options (taken: they reach cluster.conf, the quad holds, diffs
are masked) and its plain parameters (refused with a message naming the no_log option).
The whole output (stdout and stderr), the daemon's log and, where this host has one, the
journal of the run are then searched for every value: none may appear.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_daemon_local import BIN, COLLECTIONS, NODE, one_node_daemon

BOOK = Path(__file__).with_name("secrets_vvv.yml")

# position -> value; each value distinct and long enough to be found only where it leaked
TAKEN = {  # no_log options: these must reach cluster.conf
    "device": "Fd-SecretParams-7Qx",
    "node_device": "Node-SecretParams-4Kw",
    "unfence": "Unfence-SecretParams-9Zr",
    "resource": "Res-SecretAttrs-2Hn",
}
REFUSED = {  # plain positions: these must never leave the controller
    "device_plain": "Fd-PlainParams-5Mv",
    "node_plain": "Node-PlainParams-8Jd",
    "device_direct": "Node-DeviceKey-3Tc",
    "unfence_plain": "Unfence-PlainParams-6Bp",
    "resource_plain": "Res-PlainAttrs-1Gs",
    "resource_plain_json": "Res-PlainAttrsJson-8Nd",
    "service_attr": "Svc-PlainAttrs-0Yf",
    "service_resource": "Svc-InlineRes-4Lq",
    "service_secret_attrs": "Svc-InlineSecretAttrs-7Ue",
    "service_child": "Svc-ChildRes-2Wa",
}
SECRETS = {**TAKEN, **REFUSED}


def _journal_since(started: float) -> str:
    """The journal of the run where this host has one that root can read, else ''."""
    if not Path("/dev/log").exists() or not shutil.which("journalctl"):
        return ""
    done = subprocess.run(["journalctl", "--no-pager", "-o", "cat", "--since",
                           f"@{int(started) - 1}"], capture_output=True, text=True,
                          timeout=60, check=False)
    return done.stdout if done.returncode == 0 else ""


@pytest.mark.slow
def test_no_secret_value_appears_at_vvv(tmp_path: Path) -> None:
    assert len(set(SECRETS.values())) == len(SECRETS)
    extra = tmp_path / "secrets.yml"
    extra.write_text(yaml.safe_dump({"secret": SECRETS, "local_node": NODE}))
    extra.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "CLUSTERD_CONF_PATH"}
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "PATH": f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_STDOUT_CALLBACK": "default",
    })
    with one_node_daemon("rhc-secrets-", f'<clusternode name="{NODE}" nodeid="1"/>') as d:
        env["RHC_CONTROL_SOCKET"] = d["socket"]
        started = time.time()
        proc = subprocess.run(
            [str(BIN / "ansible-playbook"), "-vvv", "-i", "localhost,", "-c", "local",
             "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"@{extra}",
             str(BOOK)],
            env=env, capture_output=True, text=True, timeout=600, check=False)
        conf = Path(d["conf"]).read_text()
        daemon_log = Path(d["log"]).read_text()
    output = proc.stdout + proc.stderr
    leaked = sorted(k for k, v in SECRETS.items()
                    if v in output or v in daemon_log or v in _journal_since(started))
    # never print the output whole on a leak: name the positions only
    assert not leaked, f"secret values printed or logged: {leaked}"
    assert proc.returncode == 0, output[-8000:] + daemon_log[-3000:]
    assert "failed=0" in proc.stdout and "ignored=5" in proc.stdout, proc.stdout[-3000:]
    assert "module_args" in proc.stdout, "not a -vvv run: no module invocation printed"
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in proc.stdout
    assert all(v in conf for v in TAKEN.values()), "a no_log secret did not reach cluster.conf"
    assert not any(v in conf for v in REFUSED.values())
