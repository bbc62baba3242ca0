"""Who may do what on the control socket: peer identity, roles, refusal sentences.

Three gates, outermost first (docs/security.md, "The control socket: who may do what"):

1. the file system: the socket is 0660 root:haclient in a 0750 directory, so only root and
   members of ``haclient`` can connect() at all;
2. the connection (:meth:`AccessPolicy.role_of`): root is ``root``; a member of the admin
   group named in cluster.conf (``<clusterd admin_group="..."/>``) is ``admin``; a uid or
   gid on the allow-list (``--allow-uid``/``--allow-gid``) is ``read``; anyone else is
   refused;
3. the operation: each op declares the role it needs (``protocol.OpRegistry``), and the
   server refuses a call whose caller's role does not include it, naming the op and the role.

The web service (``clusterd-web``) is a trusted proxy: ``clusterd --web-user NAME`` names
its user, whose requests may carry ``as`` (the logged-in web user and that user's role,
``viewer`` or ``admin``). Such a request gets exactly that role (``read`` or ``admin``,
never ``root``) and is logged with the user's name; ``as`` from any other uid is refused.
A viewer's session therefore cannot change anything even if the web service is wrong; a
compromised web service can do what an admin can, never read secrets in clear.

Supplementary groups come from SO_PEERGROUPS: the kernel records them at connect(), with
the uid and gid SO_PEERCRED returns, so they are the groups the file-system gate saw. Reading
``/proc/PID/status`` instead would race with pid reuse (the client may exit and another
process take its pid) and shows the groups of a later moment; a passwd/group lookup shows
what the user database says, not what the process holds (``newgrp``, dropped groups), and
may block on a network directory. The lookup (``os.getgrouplist``) is only the fallback for
a kernel without SO_PEERGROUPS (before Linux 4.13) or a peer in more than 256 groups.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from clusterd.control import protocol as p

DEFAULT_SOCKET = "/run/cluster/clusterd.sock"
SOCKET_ENV = "RHC_CONTROL_SOCKET"
_PEERCRED = struct.Struct("3i")
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux >= 4.13; not in Python 3.11
_MAX_GROUP_BYTES = 1024                                # CPython's getsockopt buffer limit


@dataclass(frozen=True)
class AccessPolicy:
    """Who may talk to the daemon besides root (the ``read`` role): the allow-list."""

    uids: frozenset[int] = frozenset()
    gids: frozenset[int] = frozenset()
    proxy_uid: int | None = None     # the web service's user (--web-user), if any

    def allows(self, peer: p.Peer) -> bool:
        return peer.uid == 0 or peer.uid in self.uids or bool(peer.gids & self.gids) \
            or self.is_proxy(peer)

    def is_proxy(self, peer: p.Peer) -> bool:
        """Whether ``peer`` may act for web users (``as``); never root."""
        return self.proxy_uid is not None and peer.uid == self.proxy_uid != 0

    def role_of(self, peer: p.Peer, admin: AdminGroup) -> p.Role | None:
        """The peer's role, or None when it may not use the socket at all."""
        if peer.uid == 0:
            return p.Role.ROOT
        if admin.gid is not None and admin.gid in peer.gids:
            return p.Role.ADMIN
        return p.Role.READ if self.allows(peer) else None


ROOT_ONLY = AccessPolicy()


@dataclass(frozen=True)
class AdminGroup:
    """The admin group of the running cluster.conf, as this node knows it."""

    name: str | None = None      # None: not set in cluster.conf (admin = root only)
    gid: int | None = None       # None: not set, or no such group on this node

    @classmethod
    def lookup(cls, name: str | None) -> AdminGroup:
        """Resolve the group (NSS: may block; the server calls it in a thread)."""
        if not name:
            return cls()
        try:
            return cls(name, grp.getgrnam(name).gr_gid)
        except KeyError:
            return cls(name, None)

    def describe(self, role: p.Role) -> str:
        """Who holds ``role``, for a refusal: "root or group 'hacluster-admin'"."""
        if role is p.Role.ROOT:
            return "uid 0 only"
        if role is p.Role.READ:
            return "root, the admin group or the control socket allow-list"
        if self.name is None:
            return ("root only: cluster.conf names no admin group; set "
                    "<clusterd admin_group=\"GROUP\"/>")
        if self.gid is None:
            return f"root or group '{self.name}', which does not exist on this node"
        return f"root or group '{self.name}'"


def peer_credentials(sock: socket.socket) -> tuple[p.Peer, frozenset[int] | None]:
    """SO_PEERCRED, and the supplementary groups from the kernel (SO_PEERGROUPS) or None
    when it cannot tell (then :func:`with_groups` looks them up). No blocking call."""
    pid, uid, gid = _PEERCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return p.Peer(pid=pid, uid=uid, gid=gid), _peer_groups(sock)


def _peer_groups(sock: socket.socket) -> frozenset[int] | None:
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, _MAX_GROUP_BYTES)
    except OSError:
        return None                      # ENOPROTOOPT (old kernel) or ERANGE (> 256 groups)
    return frozenset(struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4]))


def with_groups(peer: p.Peer, groups: frozenset[int] | None) -> p.Peer:
    """``peer`` with its supplementary groups; looked up in the user database when the
    kernel could not tell (NSS: may block, call it in a thread)."""
    if groups is None:
        try:
            groups = frozenset(os.getgrouplist(pwd.getpwuid(peer.uid).pw_name, peer.gid))
        except KeyError:
            groups = frozenset()
    return p.Peer(pid=peer.pid, uid=peer.uid, gid=peer.gid, groups=groups)


def describe_peer(peer: p.Peer) -> str:
    """"uid 1000 (alice) in groups 1000 (alice), 990 (haclient)" (NSS: may block)."""
    try:
        user = f" ({pwd.getpwuid(peer.uid).pw_name})"
    except KeyError:
        user = ""
    groups = []
    for gid in sorted(peer.gids):
        try:
            groups.append(f"{gid} ({grp.getgrgid(gid).gr_name})")
        except KeyError:
            groups.append(str(gid))
    return f"uid {peer.uid}{user} in group{'s' if len(groups) > 1 else ''} {', '.join(groups)}"


def refusal(what: str, needed: p.Role, admin: AdminGroup, peer: p.Peer) -> str:
    """The sentence a refused caller reads (and the log keeps)."""
    if peer.on_behalf is not None:
        user = peer.on_behalf.user
        return (f"{what} needs the {needed.value} role; {user} is logged in to the web "
                f"page as a {peer.on_behalf.role} (give {user} the admin role in the web "
                "service's users, or use an admin account)")
    return (f"{what} needs the {needed.value} role ({admin.describe(needed)}); you are "
            f"{describe_peer(peer)}")


def socket_path(explicit: str | None = None) -> str:
    """The control socket path: argument, else $RHC_CONTROL_SOCKET, else the default."""
    return explicit or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


def parse_id_list(values: Iterable[str], kind: str) -> frozenset[int]:
    """Allow-list entries from config or the CLI: numbers or user/group names."""
    out: set[int] = set()
    for raw in values:
        value = raw.strip()
        if not value:
            continue
        if value.isdigit():
            out.add(int(value))
            continue
        try:
            out.add(pwd.getpwnam(value).pw_uid if kind == "uid" else grp.getgrnam(value).gr_gid)
        except KeyError:
            raise ValueError(f"unknown {'user' if kind == 'uid' else 'group'} {value!r} "
                             "in the control socket allow-list") from None
    return frozenset(out)
