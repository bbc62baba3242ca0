"""Start-up wiring: load cluster.conf and the authkey, find the local node, pick an
incarnation, build the byte-level :class:`~clusterd.membership.host.ClusterCore` and run
it over :class:`~clusterd.node.transport.ClusterEndpoint` (UDP, core ticks).

All of this is blocking and runs before the event loop starts (or through
``asyncio.to_thread``). Every refusal is a :class:`FatalError` with a sentence that says
what to fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from clusterd.conf import DEFAULT_PATH, ClusterConf, NodeConf, load, parse
from clusterd.conf.files import read_limited, write_atomic
from clusterd.configsync.startup import (
    ACCEPTED_FILE,
    StartupConfig,
    choose,
    pending_path,
)
from clusterd.control.server import AccessPolicy
from clusterd.errors import ConfigError, FatalError
from clusterd.events import Event
from clusterd.membership.config import MembershipConfig
from clusterd.membership.host import ClusterCore
from clusterd.node import wirestate
from clusterd.node.status import StatusNode
from clusterd.node.transport import ClusterEndpoint
from clusterd.node.wirestate import new_incarnation
from clusterd.wire.auth import DEFAULT_AUTHKEY, load_authkey
from clusterd.wire.messages import MAX_CONFIG_BYTES

logger = logging.getLogger(__name__)

DEFAULT_STATE_DIR = "/var/lib/clusterd"
Address = tuple[str, int]


@dataclass(frozen=True)
class Options:
    config_path: str = DEFAULT_PATH
    authkey_path: str = DEFAULT_AUTHKEY
    node: str | None = None
    control_socket: str | None = None
    state_dir: str = DEFAULT_STATE_DIR
    policy: AccessPolicy = field(default_factory=AccessPolicy)


def load_conf(path: str) -> ClusterConf:
    try:
        return load(path)
    except ConfigError as exc:
        raise FatalError(f"cannot start: {exc}") from None
    except OSError as exc:
        raise FatalError(f"cannot start: cannot read {path}: {exc.strerror}") from None


def _read(path: str) -> bytes | None:
    try:
        return read_limited(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FatalError(f"cannot start: cannot read {path}: {exc.strerror}") from None


def startup_conf(config_path: str, state_dir: str) -> StartupConfig:
    """The config to start with: cluster.conf, or the copy a quorate view accepted when
    the file differs from it (configsync/startup.py); carries out what that decides
    (keeps the file as a pending proposal, writes the accepted copy back) and logs why."""
    disk = _read(config_path)
    copy = _read(os.path.join(state_dir, ACCEPTED_FILE))
    if disk is None and copy is None:
        raise FatalError(f"cannot start: cannot read {config_path}: No such file or "
                         f"directory (and no accepted copy in {state_dir})")
    try:
        choice = choose(disk, copy, lambda data: parse(data, source=config_path),
                        config_path=config_path)
    except ConfigError as exc:
        raise FatalError(f"cannot start: {exc}") from None
    try:
        if choice.pending is not None:
            write_atomic(pending_path(config_path, choice), choice.pending)
        if choice.rewrite:
            write_atomic(config_path, choice.data)
    except OSError as exc:
        raise FatalError(f"cannot start: cannot write next to {config_path}: "
                         f"{exc.strerror}") from None
    if choice.message:
        getattr(logger, choice.level)("%s", choice.message)
    return choice


def save_accepted(state_dir: str, data: bytes) -> None:
    """Keep ``data`` as the accepted copy, the config this node starts with next time."""
    os.makedirs(state_dir, mode=0o750, exist_ok=True)
    write_atomic(os.path.join(state_dir, ACCEPTED_FILE), data)


def identify(conf: ClusterConf, name: str | None) -> NodeConf:
    """The local node: ``--node NAME``, else the host name (full, then short)."""
    if name:
        node = conf.node_by_name(name)
        if node is None:
            raise FatalError(f"cannot start: node {name!r} is not a clusternode in "
                             f"{conf.source}")
        return node
    host = socket.gethostname()
    for candidate in (host, host.split(".", 1)[0]):
        node = conf.node_by_name(candidate)
        if node is not None:
            return node
    raise FatalError(f"cannot start: this host ({host}) is not a clusternode in "
                     f"{conf.source}; pass --node NAME")


def resolve_address(name: str) -> str:
    """A node's address: the name itself when it is an IP literal, else its IPv4."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"no IPv4 address for {name}")
    return str(infos[0][4][0])


class Runtime:
    """The loaded node: config, identity, core and the UDP endpoint."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.startup = startup_conf(opts.config_path, opts.state_dir)
        self.conf = self.startup.conf
        self.local = identify(self.conf, opts.node)
        key = load_authkey(opts.authkey_path)
        try:
            self.mcfg = MembershipConfig.from_conf(self.conf, resolve=resolve_address)
        except ConfigError as exc:
            raise FatalError(f"cannot start: {exc}") from None
        state, name = opts.state_dir, self.local.name
        self.incarnation = new_incarnation(wirestate.read_incarnation(state, name))
        self.save_incarnation(self.incarnation)  # before the first packet is sealed
        self.core = ClusterCore(self.mcfg, self.local.nodeid, key=key.secret,
                                incarnation=self.incarnation,
                                peers_seen=wirestate.read_peers(state, name),
                                config_data=self.startup.data,
                                config_accepted=self.startup.accepted,
                                validator=lambda data: parse(data, source="cluster.conf "
                                                                          "from a peer"),
                                # heartbeat rounds on the wall-clock grid (NTP-synced
                                # peers' rounds arrive together: one wakeup per round)
                                grid_offset=time.time() - time.monotonic())
        del key
        self.endpoint: ClusterEndpoint | None = None
        self._runner: asyncio.Task | None = None

    # -- wire state (clusterd.node.wirestate) -----------------------------------------
    def save_incarnation(self, incarnation: int) -> None:
        wirestate.save_incarnation(self.opts.state_dir, incarnation)

    def save_peers(self, peers: Mapping[int, tuple[int, int]]) -> None:
        wirestate.save_peers(self.opts.state_dir, peers)

    # -- transport (clusterd.node.transport) ---------------------------------------------
    @property
    def address(self) -> Address:
        return self.core.addr

    async def start(self, on_events: Callable[[tuple[Event, ...]], None]) -> None:
        """Bind the node's address and port and run the endpoint, which ticks the core
        and feeds it every datagram; the core's events go to ``on_events``."""
        self.endpoint = ClusterEndpoint(self.core, on_events=on_events)
        try:
            await self.endpoint.start()
        except OSError as exc:
            raise FatalError(f"cannot start: cannot bind UDP {self.address[0]}:"
                             f"{self.address[1]}: {exc.strerror}") from None
        self._spawn()
        logger.info("node %s: cluster %s, nodeid %d, UDP %s:%d", self.local.name,
                    self.conf.name, self.local.nodeid, *self.address)

    def _spawn(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self.endpoint.run(),
                                                              name="cluster-endpoint")

    def supervise(self) -> BaseException | None:
        """Called every cycle: if the endpoint loop died (a bug in a core), restart it and
        return the exception so that the daemon's failure policy logs it."""
        runner = self._runner
        if runner is None or not runner.done() or runner.cancelled():
            return None
        exc = runner.exception()
        self._spawn()
        return exc

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
            self._runner = None
        if self.endpoint is not None:
            self.endpoint.close()

    # -- config --------------------------------------------------------------------------
    def status_nodes(self) -> tuple[StatusNode, ...]:
        addrs = self.mcfg.addresses()
        return tuple(StatusNode(n.name, n.nodeid, n.votes,
                                addrs[n.nodeid][0] if n.nodeid in addrs else "")
                     for n in self.conf.nodes)

    def apply_conf(self, conf: ClusterConf) -> None:
        """Run with a newly accepted config; membership follows node list/vote/timer
        changes at once (ClusterCore.reconfigure) unless this node's own address changed.
        Any config change ends expected votes set by hand (``cman_tool expected``), even
        one that leaves the membership part as it was."""
        self.conf = conf
        if self.endpoint is None:
            return
        try:
            mcfg = MembershipConfig.from_conf(conf, resolve=resolve_address)
            if mcfg == self.mcfg and self.core.membership.expected.current is None:
                return
            self.endpoint.reconfigure(mcfg)
        except KeyError:
            logger.error("node %s: config_version %d no longer lists this node; stop clusterd "
                         "here (it keeps the old membership until then)", self.local.name,
                         conf.version)
            return
        except (ValueError, OSError, ConfigError) as exc:
            logger.warning("node %s: config_version %d changes membership in a way that needs "
                           "a restart of clusterd: %s", self.local.name, conf.version, exc)
            return
        self.mcfg = mcfg
        logger.info("node %s: membership now follows config_version %d (%d nodes)",
                    self.local.name, conf.version, len(conf.nodes))
