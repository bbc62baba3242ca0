"""Fence agents' metadata for validation (edge: runs ``AGENT -o metadata``).

Validation checks fence device parameters against each agent's own metadata
(``conf/fenceparams.py``); this module supplies it, always through an :class:`AgentRunner`
(so the agent is found and run the one way agents are: search directories, root-owned
path, clean environment, own session, process group killed on timeout), with at most
:data:`METADATA_TIMEOUT` seconds per agent. Metadata is read once per version of an
agent's file (path, mtime, size):

* in memory, in the runner's ``metadata_cache``: the daemon validates proposals with the
  fencer's own runner, so a read for validation also serves the first fence (and back);
* on disk, for the one-shot tools (``ccs_config_validate``, ``cluster_admin``), in
  :data:`DEFAULT_CACHE_FILE`: written only where its directory exists (a node: clusterd
  made it) and read only when it is owned by root or by this user and writable by no one
  else; anything else in it is ignored, and a wrong entry only ever costs a new read.

Two ways in: :class:`MetadataCatalog` is synchronous (the command-line tools);
:func:`prefetch` reads every agent a config names asynchronously, for the daemon's
``conf.propose``, so the event loop never waits on an agent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Iterable

from clusterd.atomicfile import write_atomic
from clusterd.errors import AgentError
from clusterd.fencing.agent import AgentRunner, metadata_key
from clusterd.fencing.metadata import AgentMetadata

logger = logging.getLogger(__name__)

METADATA_TIMEOUT = 5.0
DEFAULT_CACHE_FILE = "/var/lib/clusterd/fence-metadata.json"
CACHE_FORMAT = 1


async def read_metadata(runner: AgentRunner, agent: str,
                        timeout: float = METADATA_TIMEOUT) -> AgentMetadata:
    """The agent's metadata (cached by the runner); AgentError when it is not installed,
    fails, prints garbage or does not answer within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            return await runner.metadata(agent)
    except TimeoutError:
        raise AgentError(agent, "metadata", None,
                         reason=f"`{agent} -o metadata` did not answer within {timeout:g}s "
                                "(its process group was killed)") from None


class Prefetched:
    """Metadata read ahead of a validation (:func:`prefetch`): a ``FenceAgents``."""

    def __init__(self, found: dict[str, AgentMetadata | AgentError]) -> None:
        self.found = dict(found)

    def metadata(self, agent: str) -> AgentMetadata:
        meta = self.found.get(agent)
        if meta is None:
            raise AgentError(agent, "metadata", None, reason=f"{agent} was not read ahead")
        if isinstance(meta, AgentError):
            raise meta
        return meta


async def prefetch(agents: Iterable[str], runner: AgentRunner,
                   timeout: float = METADATA_TIMEOUT) -> Prefetched:
    """Read the metadata of every agent in ``agents`` at once (each at most ``timeout``)."""
    names = sorted(set(agents))
    results = await asyncio.gather(*(read_metadata(runner, name, timeout) for name in names),
                                   return_exceptions=True)
    found: dict[str, AgentMetadata | AgentError] = {}
    for name, result in zip(names, results):
        if isinstance(result, (AgentMetadata, AgentError)):
            found[name] = result
        elif isinstance(result, BaseException):
            raise result          # a bug or a cancellation, not an agent's answer
    return Prefetched(found)


class MetadataCatalog:
    """Synchronous metadata for the command-line tools: memory, then the cache file, then
    the agent itself (a ``FenceAgents``). Not for the daemon's event loop."""

    def __init__(self, runner: AgentRunner | None = None, *,
                 cache_file: str | None = DEFAULT_CACHE_FILE,
                 timeout: float = METADATA_TIMEOUT) -> None:
        self.runner = runner or AgentRunner()
        self.cache_file = cache_file
        self.timeout = timeout
        self._disk: dict[str, dict] | None = None

    def metadata(self, agent: str) -> AgentMetadata:
        key = metadata_key(self.runner.resolve(agent))
        memory = self.runner.metadata_cache
        if key not in memory:
            memory[key] = self._from_disk(key) or self._read(agent, key)
        return memory[key]

    def _read(self, agent: str, key: tuple[str, int, int]) -> AgentMetadata:
        meta = asyncio.run(read_metadata(self.runner, agent, self.timeout))
        self._to_disk(key, meta)
        return meta

    def _entries(self) -> dict[str, dict]:
        if self._disk is None:
            self._disk = _load(self.cache_file) if self.cache_file else {}
        return self._disk

    def _from_disk(self, key: tuple[str, int, int]) -> AgentMetadata | None:
        entry = self._entries().get(key[0])
        if not isinstance(entry, dict) or (entry.get("mtime_ns"), entry.get("size")) != key[1:]:
            return None
        try:
            return AgentMetadata.from_record(entry.get("metadata"))
        except ValueError as exc:
            logger.debug("fence metadata cache %s: entry for %s ignored: %s",
                         self.cache_file, key[0], exc)
            return None

    def _to_disk(self, key: tuple[str, int, int], meta: AgentMetadata) -> None:
        if not self.cache_file or not os.path.isdir(os.path.dirname(self.cache_file)):
            return
        entries = self._entries()
        entries[key[0]] = {"mtime_ns": key[1], "size": key[2], "metadata": meta.to_record()}
        try:
            _write(self.cache_file, {"format": CACHE_FORMAT, "agents": entries})
        except OSError as exc:
            logger.debug("fence metadata cache %s not written: %s", self.cache_file, exc)


def _load(path: str) -> dict[str, dict]:
    """The entries of a cache file we may trust, else nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return {}
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            logger.debug("fence metadata cache %s ignored: owned by uid %d, mode %04o",
                         path, st.st_uid, stat.S_IMODE(st.st_mode))
            return {}
        try:
            doc = json.loads(fh.read(16 * 1024 * 1024))
        except ValueError:
            return {}
    agents = doc.get("agents") if isinstance(doc, dict) and \
        doc.get("format") == CACHE_FORMAT else None
    return dict(agents) if isinstance(agents, dict) else {}


def _write(path: str, doc: dict) -> None:
    """Atomically (:mod:`clusterd.atomicfile`), mode 0644."""
    write_atomic(path, json.dumps(doc, sort_keys=True).encode(), 0o644,
                 prefix=".fence-metadata.", root_owned=False)
