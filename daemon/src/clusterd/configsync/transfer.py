"""Moving a config between nodes: a chunked pull from its holders, and serving chunks.

A node pulls a config (version, sha256) from one node that advertises it, in
``CONFIG_CHUNK_BYTES`` chunks over the authenticated channel: request, chunk, next
request. A holder that does not answer within token/2 is replaced by one not tried yet
(every holder again once all were tried); a holder that answers with an empty chunk is
left to time out the same way. Which config to pull, and what becomes of the bytes once
they are all in (hash check, validation, install), is ``ConfigSyncCore``'s decision: this
part only moves the bytes and keeps them in order. Sans-IO: requests and chunks go to the
core's output buffer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from clusterd.configsync.model import Running
from clusterd.events import OutputBuffer
from clusterd.wire.messages import CONFIG_CHUNK_BYTES, ConfigChunk, ConfigRequest

logger = logging.getLogger("clusterd.configsync.core")  # one logger for config sync

Holders = Callable[[int, str, float], set[int]]  # (version, sha256, now) -> fresh holders


@dataclass
class Pull:
    version: int
    sha256: str
    holder: int
    buf: bytearray
    deadline: float
    tried: set[int]
    accepted: bool = True  # its holders run it as accepted by a quorate view


class Transfer:
    def __init__(self, me: int, out: OutputBuffer) -> None:
        self.me = me
        self._out = out
        self.pull: Pull | None = None  # the one pull in progress

    def serve(self, sender: int, msg: ConfigRequest, running: Running) -> None:
        """Answer a request for the running config (any other is ignored)."""
        if (msg.version, msg.sha256) == (running.version, running.sha256) \
                and running.version > 0 and msg.offset <= len(running.data):
            chunk = running.data[msg.offset:msg.offset + CONFIG_CHUNK_BYTES]
            self._out.send(sender, ConfigChunk(running.version, running.sha256, msg.offset,
                                               len(running.data), chunk))

    def start(self, version: int, sha256: str, holder: int, accepted: bool, now: float,
              token: float) -> None:
        """Pull (version, sha256) from ``holder``, replacing any pull in progress."""
        self.pull = Pull(version, sha256, holder, bytearray(), now, {holder}, accepted)
        self._request(now, token)

    def retry(self, now: float, token: float, holders: Holders) -> None:
        """The holder did not answer in time: ask the next one, or give up when no
        holder is in sight (the core starts a new pull when one advertises it again)."""
        p = self.pull
        if p is None or now < p.deadline:
            return
        untried = holders(p.version, p.sha256, now) - p.tried
        if not untried:
            p.tried.clear()
            untried = holders(p.version, p.sha256, now)
        if not untried:
            logger.info("node %d: no holder of config_version %d is reachable; giving up "
                        "for now", self.me, p.version)
            self.pull = None
        else:
            p.holder = min(untried)
            p.tried.add(p.holder)
            self._request(now, token)

    def on_chunk(self, sender: int, msg: ConfigChunk, now: float, token: float) -> Pull | None:
        """Take a chunk of the pull in progress; returns that pull once its last chunk is
        in (``buf`` then holds every byte, not yet checked), None until then."""
        p = self.pull
        if p is None or (msg.version, msg.sha256) != (p.version, p.sha256) \
                or msg.offset != len(p.buf):
            return None
        p.buf += msg.data
        if len(p.buf) < msg.total:
            if not msg.data:
                return None  # a holder that sends nothing: time out and try another
            p.holder = sender
            self._request(now, token)
            return None
        self.pull = None
        return p

    def cancel(self) -> None:
        """Drop the pull in progress: nothing is wanted any more, or a config at least as
        new was installed meanwhile."""
        self.pull = None

    def _request(self, now: float, token: float) -> None:
        p = self.pull
        assert p is not None
        p.deadline = now + token / 2
        self._out.send(p.holder, ConfigRequest(p.version, p.sha256, len(p.buf)))
