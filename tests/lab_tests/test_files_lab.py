"""Apache and Samba on shared storage answer through their floating address after every
kind of failover, on the lab: the real daemon on three emulated nodes, the lab's shared
disk, fencing with the real fence_ipmilan, Debian's apache2 run by the RHCS ``apache``
type (translated onto ocf:heartbeat:apache) and Debian's smbd/nmbd run by the RHCS
``samba`` type (clusterd's built-in agent), from an unchanged RHCS service:

    <service name="files" domain="files_nodes" recovery="relocate">
      <fs device="/dev/cluster-lun0" mountpoint="/srv/files" fstype="ext4" force_unmount="1"/>
      <ip address="FLOAT/24" monitor_link="1"/>
      <apache server_root="/etc/apache2" config_file="cluster-files.conf" shutdown_wait="10"/>
      <samba config_file="/etc/samba/smb.conf.files" shutdown_wait="10"/>
    </service>

Clients in the lab's client namespace use the real tools: curl fetches a page from the
document root on the shared filesystem (every 50 ms, for the record), and smbclient
writes a new file to the share and reads every earlier one back. The faults, each once,
always on the service's owner, are those of the database test (test_database_lab.py):
powered off, its link gone, its clusterd paused past the token, partitioned, and
``clusvcadm -r``. After each: the page answers through the floating address with the
content written before the first fault, every file smbclient wrote (acknowledged by its
exit status) reads back with its content, and a new one can be written. Throughout, the
auditor reads every node's mount table: the shared filesystem is never mounted on two
nodes at once. No timing is asserted.

NFS (``nfsserver``/``nfsexport``/``nfsclient``) is not run here: the lab's kernel has no
``nfsd`` (nor ``nfs`` in /proc/filesystems) and a container cannot load modules; the NFS
types are proven with fake agents in the unit tests (docs/rhcs-migration.md says what a
real cluster needs).
"""

from __future__ import annotations

import functools
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterlab.disk import DEVICE
from test_database_lab import (
    Auditor,
    SharedDiskLab,
    _fault,
    _moved,
    _recover_node,
    deployed,
)

pytestmark = pytest.mark.lab

MOUNTPOINT = "/srv/files"
APACHE_CONF = "/etc/apache2/cluster-files.conf"
SMB_CONF = "/etc/samba/smb.conf.files"
FAULTS = ("power_off", "link_down", "clusterd_paused", "partition", "relocate")
MODULES = "/usr/lib/apache2/modules"

APACHE = f"""# the cluster service files (RHCS <apache>): the document root is on the shared disk
ServerRoot /etc/apache2
ServerName files
PidFile /run/cluster-files-apache.pid
Listen 80
User www-data
Group www-data
ErrorLog /var/log/apache2/cluster-files.err
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule authz_host_module {MODULES}/mod_authz_host.so
LoadModule mime_module {MODULES}/mod_mime.so
LoadModule dir_module {MODULES}/mod_dir.so
LoadModule status_module {MODULES}/mod_status.so
TypesConfig /etc/mime.types
DocumentRoot {MOUNTPOINT}/www
<Directory {MOUNTPOINT}/www>
    Require all granted
</Directory>
<Location /server-status>
    SetHandler server-status
    Require local
</Location>
"""

SAMBA = f"""# the cluster service files (RHCS <samba>): clusterd binds it to the service's address
[global]
    workgroup = CLUSTER
    server role = standalone server
    map to guest = Bad User
    log file = /var/log/samba/files.log
    # an acknowledged write is on the disk before smbd answers (a power cut loses nothing)
    strict sync = yes
    sync always = yes

[files]
    path = {MOUNTPOINT}/share
    read only = no
    guest ok = yes
    force user = root
"""


class FilesLab(SharedDiskLab):
    """SvcLab's deployment (daemon copy, transient unit) with the ``files`` service."""

    SERVICE = "service:files"
    PID_FILES = "/run/cluster-files-apache.pid /run/cluster/samba/files/pid/*.pid"
    MOUNTPOINT = MOUNTPOINT

    def __init__(self, lab) -> None:
        self.marker = secrets.token_hex(8)
        super().__init__(lab, float_ip=lab.spec.floating_range[0])

    def _conf(self, prefix: int) -> str:
        conf = super()._conf(prefix)
        members = "".join(f'<failoverdomainnode name="{n}" priority="{i}"/>'
                          for i, n in enumerate(self.names, 1))
        rm = (f'<rm><failoverdomains><failoverdomain name="files_nodes" ordered="1" '
              f'nofailback="1">{members}</failoverdomain></failoverdomains>'
              f'<service name="files" domain="files_nodes" recovery="relocate">'
              f'<fs name="filesfs" device="{DEVICE}" mountpoint="{MOUNTPOINT}" fstype="ext4" '
              f'force_unmount="1"/>'
              f'<ip address="{self.float_ip}/{prefix}" monitor_link="1"/>'
              f'<apache name="www" server_root="/etc/apache2" '
              f'config_file="{Path(APACHE_CONF).name}" shutdown_wait="10"/>'
              f'<samba name="files" config_file="{SMB_CONF}" shutdown_wait="10"/>'
              f'</service></rm></cluster>\n')
        return conf[:conf.index("<rm>")] + rm

    def install(self) -> None:
        for name in self.names:
            self.clear(name)
        super().install()
        for name in self.names:
            self.lab.exec(name, ["sh", "-c", f"cat > {APACHE_CONF}"], input=APACHE)
            self.lab.exec(name, ["sh", "-c", f"cat > {SMB_CONF}"], input=SAMBA)
        # a fresh filesystem with the document root and the share: what an operator does
        # once when moving the files onto shared storage (the cluster only mounts it)
        self.lab.exec(self.names[0], ["sh", "-ec", (
            f"mkfs.ext4 -q -F {DEVICE}; mkdir -p {MOUNTPOINT}; mount {DEVICE} {MOUNTPOINT}; "
            f"trap 'umount {MOUNTPOINT}' EXIT; mkdir -p {MOUNTPOINT}/www {MOUNTPOINT}/share; "
            f"echo {self.marker} > {MOUNTPOINT}/www/index.html")], timeout=120)

    # -- clients, in the lab's client namespace ------------------------------------------
    def _client(self, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.lab.spec.client_netns, *argv],
                              capture_output=True, text=True, check=False, timeout=timeout)

    def page(self) -> str:
        out = self._client(["curl", "-s", "--max-time", "2", f"http://{self.float_ip}/"])
        return out.stdout.strip() if out.returncode == 0 else ""

    def smb(self, command: str) -> subprocess.CompletedProcess:
        """One smbclient session on the share as guest (-N), through the floating address."""
        return self._client(["smbclient", f"//{self.float_ip}/files", "-N", "-t", "5",
                             "-c", command])

    def smb_put(self, local: Path, remote: str) -> bool:
        return self.smb(f"put {local} {remote}").returncode == 0

    def smb_get(self, remote: str, local: Path) -> str | None:
        local.unlink(missing_ok=True)
        out = self.smb(f"get {remote} {local}")
        return local.read_text() if out.returncode == 0 and local.exists() else None


class Poller(threading.Thread):
    """Fetches the page every 50 ms; keeps (time, answered) for the record."""

    def __init__(self, d: FilesLab) -> None:
        super().__init__(daemon=True)
        self.d = d
        self.halt = threading.Event()
        self.seen: list[tuple[float, bool]] = []

    def run(self) -> None:
        while not self.halt.is_set():
            self.seen.append((time.time(), self.d.page() == self.d.marker))
            self.halt.wait(0.05)


@pytest.fixture(scope="module")
def files(lab) -> Iterator[FilesLab]:
    yield from deployed(lab, FilesLab)


def _written(d: FilesLab, tmp: Path, acked: dict[str, str], label: str) -> None:
    """Every file written so far reads back with its content; then one more is written."""
    for remote, content in acked.items():
        got = d.smb_get(remote, tmp / "got")
        assert got == content, f"after {label}: {remote} reads back {got!r}, not {content!r}"
    remote, content = f"f{len(acked):03d}.txt", secrets.token_hex(16)
    (tmp / "put").write_text(content)
    d.wait(f"smbclient writes {remote} after {label}",
           lambda: d.smb_put(tmp / "put", remote), timeout=60)
    acked[remote] = content


def test_apache_and_samba_answer_through_every_failover(files: FilesLab, tmp_path: Path):
    d = files
    n1 = d.names[0]
    d.wait("files started on node1", lambda: d.owner(d.names[1]) == n1, timeout=180)
    d.wait("the page through the floating address", lambda: d.page() == d.marker, timeout=60)
    # Samba bound to the service's address only (RHCS's samba did that: several samba
    # services can share a node); the floating address is the one clients use.
    sockets = d.lab.exec(n1, ["ss", "-Hltn", "sport = :445"]).stdout
    assert f"{d.float_ip}:445" in sockets and "0.0.0.0:445" not in sockets, sockets
    acked: dict[str, str] = {}
    _written(d, tmp_path, acked, "start")
    auditor, poller = Auditor(d.lab), Poller(d)
    auditor.start()
    poller.start()
    try:
        for kind in FAULTS:
            # asked of every node that is on: one that just rejoined learns the owner
            # from the others' next report
            owner = d.wait(f"files started before {kind}", lambda: next(
                (o for n in d.names if d.lab.is_on(n) and (o := d.owner(n))), None),
                timeout=60)
            _fault(d, kind, owner)
            d.wait(f"files started on another node than {owner} after {kind}",
                   functools.partial(_moved, d, owner), timeout=180)
            d.wait(f"the page answers again after {kind}", lambda: d.page() == d.marker,
                   timeout=60)
            _written(d, tmp_path, acked, kind)
            if kind != "relocate":
                _recover_node(d, owner)
    finally:
        auditor.halt.set()
        poller.halt.set()
        auditor.join()
        poller.join()
    assert len(acked) == len(FAULTS) + 1
    assert auditor.samples > 100 and len(auditor.owners_seen) >= 2
    assert not auditor.double, ("the shared filesystem was mounted on two nodes at once: "
                                f"{auditor.double[:5]}")
    assert any(ok for _t, ok in poller.seen) and not all(ok for _t, ok in poller.seen)


def test_samba_config_errors_fail_the_start_and_leave_nothing_running(files: FilesLab):
    """Bad input on one node: its smb.conf.files gives a share a boolean Samba cannot read.
    testparm refuses it before anything starts there; the service goes on to the next
    node with the share, and nothing of Samba is left running on the broken node."""
    d = files
    owner = d.wait("files started", lambda: d.owner(next(n for n in d.names
                                                         if d.lab.is_on(n))), timeout=180)
    broken, spare = [n for n in d.names if n != owner]   # domain order: broken first
    d.lab.exec(broken, ["sh", "-c", f"cat > {SMB_CONF}"],
               input=SAMBA + "    read only = maybe\n")
    try:
        d.lab.power(owner, "off")
        d.wait(f"files started on {spare}", lambda: d.owner(spare) == spare, timeout=240)
        assert d.page() == d.marker
        left = d.lab.exec(broken, ["sh", "-c", "pgrep -x smbd; pgrep -x nmbd; true"]).stdout
        assert left.strip() == "", f"samba left running on {broken}: {left}"
        assert d.lab.shared_disk_mounts()[broken] == []
    finally:
        d.lab.exec(broken, ["sh", "-c", f"cat > {SMB_CONF}"], input=SAMBA)
        _recover_node(d, owner)

