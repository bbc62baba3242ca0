"""RHCS's ``<nfsclient>`` and ``<nfsserver>`` as resource-agents OCF agents (pure).

Part of :mod:`clusterd.resources.agents.rhcs_types`, which lists both types, runs them
through its ``translate()`` (with its rules for ``name``/``ref``/``__*``, unknown and
required attributes) and prints :data:`RULES` in the docs table. ``<nfsexport>`` is a
built-in agent instead (:mod:`clusterd.resources.agents.nfsexport`). Read from rgmanager's
``nfsclient.sh.in``, ``nfsexport.sh.in``, ``nfsserver.sh.in`` and ``fs.sh.in``
(ClusterLabs/resource-agents ``rgmanager/src/resources``) and from the OCF agents
``heartbeat/exportfs`` and ``heartbeat/nfsserver``.

RHCS's model: an ``<fs>`` holds an ``<nfsexport>`` that holds one ``<nfsclient>`` per
client (a host, wildcard, ``@netgroup`` or network). The tree fills in what they inherit
(``clusterd.resources.rules``): the nfsexport's ``path`` is the fs's ``mountpoint`` and
its ``fsid`` the fs's ``fsid``; an nfsclient's ``path`` and ``fsid`` are the nfsexport's.
The translators here see the attributes with those values already filled in.

``nfsclient`` -> ``heartbeat:exportfs``, one OCF resource per client, as nfsclient.sh ran
``exportfs -i -o fsid=F,OPTIONS TARGET:PATH`` at start and ``exportfs -u TARGET:PATH`` at
stop:

* ``target`` -> ``clientspec``; ``path`` -> ``directory`` (trailing slashes dropped, as
  both agents did); ``options`` -> ``options``.
* ``fsid`` -> ``fsid``. An ``fsid=`` inside ``options`` wins over the attribute, as in
  nfsclient.sh; it becomes the parameter and leaves ``options``. heartbeat:exportfs
  requires an fsid, while nfsclient.sh passed none when none was set (nfs-utils then told
  the file system by its UUID, or its device number: exports(5)). rgmanager never generated one: fs.sh has no default and
  no code for it (the only generator was luci, the RHCS web GUI, which wrote
  ``crc32(fs name) & 0xffff`` into cluster.conf when an fs was created there). So when
  none is set, :func:`derived_fsid` derives one from the exported directory:
  ``zlib.crc32(DIRECTORY) & 0x7fffffff`` (1 where that is 0, since 0 is the NFSv4 root),
  the same on every node and for every client of one directory, different for different
  directories (two paths collide with odds of 1 in 2**31; write ``fsid=`` on the ``<fs>``
  to choose). A client that held the file system mounted under RHCS without an fsid sees
  stale file handles once, after the move. A value that is not a number, ``root`` or a
  UUID (exports(5)) is refused.
* ``options``: each comma-separated option must be one nfsclient.sh's ``verify_options``
  took (:data:`EXPORT_OPTIONS`): it failed the start on any other, so a file with one
  never exported under RHCS; refused. Blanks inside are refused: both agents pass the
  options unquoted on the exportfs command line.
* ``unlock_on_stop`` is always written ``false`` (*default kept*: the default of current
  heartbeat:exportfs is true, and unlocking releases every NFS lock on the whole file
  system when one client's export stops, also those of the clients it stays exported to;
  nfsclient.sh only unexported).
* ``allow_recover``: after a failed status check rgmanager ran nfsclient.sh's ``recover``
  (unexport, export again) unless this was false. clusterd has no in-place recover: a
  failed check restarts the service, as RHCS did with ``allow_recover="0"``; mark the
  nfsclient ``__independent_subtree="1"`` to restart (re-export) only it. Read as a
  boolean, otherwise ignored.
* ``use_cache`` and ``service_name`` named nfsclient.sh's 30-second cache of
  ``exportfs -v`` for the status checks; ``svcname`` was never read. Ignored.
* No ``path`` (an nfsclient outside an nfsexport or nfsserver in an fs), a relative path,
  or one with blanks (heartbeat:exportfs reads blanks as a list of directories): refused.

``nfsserver`` -> ``heartbeat:nfsserver``: nfsserver.sh started the node's NFS server for
the service (NFSv4), kept its state on the service's file system and stopped the server
at the service's stop; heartbeat:nfsserver does the same. ``path`` (inherited from the
fs's ``mountpoint``: nfsserver.sh's meta-data says ``inherit="mountpoint"``) and
``nfspath`` (default ``.clumanager/nfs``, relative to ``path``) become
``nfs_shared_infodir`` = ``PATH/NFSPATH``, the directory nfsserver.sh kept ``statd/``,
``v4recovery/`` and the export tables in (heartbeat:nfsserver binds it over
``/var/lib/nfs``). No path, a relative one, or blanks (the bind mount's command line is
unquoted): refused.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clusterd.resources.agents.rhcs_types import _Refusals

AGENTS = {"nfsclient": "heartbeat:exportfs", "nfsserver": "heartbeat:nfsserver"}
REQUIRED = {"nfsclient": ("target",)}
RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "nfsclient": (
        ("target", "param clientspec"),
        ("path", "param directory (inherited: the nfsexport's path, the fs mountpoint)"),
        ("svcname", "ignored: filled in by rgmanager (inherit service%name), never read"),
        ("fsid", ("param fsid (inherited from the fs; fsid= in options wins; none set: "
                  "derived from the path, the same on every node)")),
        ("options", ("param options (the exports(5) options nfsclient.sh accepted; others "
                     "refused)")),
        ("allow_recover", ("ignored: no in-place re-export; a failed check restarts the "
                           "service, or the nfsclient alone with __independent_subtree")),
        ("service_name", "ignored: it named nfsclient.sh's export list cache"),
        ("use_cache", "ignored: heartbeat:exportfs reads the export list at each check"),
    ),
    "nfsserver": (
        ("path", "param nfs_shared_infodir (PATH/nfspath; inherited: the fs mountpoint)"),
        ("nfspath", ("param nfs_shared_infodir (path/NFSPATH; .clumanager/nfs when not "
                     "set, as RHCS)")),
    ),
}
NFSSERVER_NFSPATH = ".clumanager/nfs"
# nfsclient.sh verify_options(): the exports(5) options it accepted ("name=" takes a value).
EXPORT_OPTIONS = frozenset({
    "secure", "insecure", "rw", "ro", "async", "sync", "wdelay", "no_wdelay", "hide",
    "nohide", "subtree_check", "no_subtree_check", "secure_locks", "insecure_locks",
    "auth_nlm", "no_auth_nlm", "root_squash", "no_root_squash", "all_squash",
    "no_all_squash", "sec=", "mountpoint=", "mp=", "anonuid=", "anongid="})
_FSID_NUMBER = re.compile(r"^(root|[0-9]+|0[xX][0-9A-Fa-f]+)$")  # strtoul(.., 0)
_FSID_UUID = re.compile(r"^[0-9A-Fa-f]{32}$")


def derived_fsid(directory: str) -> str:
    """The fsid of an export no fsid was set for (see the module docstring)."""
    return str(zlib.crc32(directory.encode()) & 0x7FFFFFFF or 1)


def _fsid_ok(value: str) -> bool:
    """exports(5) ``fsid=num|root|uuid`` as nfs-utils reads it (the number with
    ``strtoul(.., 0)``; a UUID: 32 hex digits, ``-`` or ``:`` apart)."""
    return bool(_FSID_NUMBER.match(value) or _FSID_UUID.match(re.sub(r"[-:]", "", value)))


def _directory(attrs: Mapping[str, str], out: _Refusals, agent: str,
               where: str) -> str | None:
    """The absolute, blank-free ``path`` without trailing slashes, or None (refused)."""
    path = attrs.get("path")
    if path is None:
        out.add("path", f"is not set: an <{out.rtype}> takes the mountpoint of the <fs> "
                "it sits in (by inheritance)", f"put it {where}, or set path=\"/srv/dir\"")
        return None
    if not path.startswith("/"):
        out.add("path", "is not an absolute path (inherited from the <fs> mountpoint unless "
                "set here)", "write the full path, e.g. /srv/nfs", path)
        return None
    if any(c.isspace() for c in path):
        out.add("path", f"contains blanks, which {agent} reads as a list of directories "
                "(it does not quote the path)", "export a directory whose path has no "
                "blanks", path)
        return None
    return path.rstrip("/") or "/"


def _options(options: str, out: _Refusals) -> tuple[list[str], str | None]:
    """The options without ``fsid=``, and the ``fsid=`` value (the last one) if any."""
    kept: list[str] = []
    fsid: str | None = None
    refused: list[str] = []
    for word in options.strip().split(","):
        if word.startswith("fsid="):
            fsid = word[len("fsid="):]
        elif word in EXPORT_OPTIONS or (f"{word.partition('=')[0]}=" in EXPORT_OPTIONS
                                        and "=" in word):
            kept.append(word)
        elif word:
            refused.append(word)
    if any(c.isspace() for c in options.strip()):
        out.add("options", "contains blanks, which exportfs would read as more exports",
                "separate the options with commas only, e.g. rw,sync", options)
    elif refused:
        out.add("options", f"has {', '.join(refused)}, which nfsclient.sh refused at start "
                "(it took only the exports(5) options it knew)",
                f"remove {'them' if len(refused) > 1 else 'it'}, or write <ocf agent="
                "\"heartbeat:exportfs\" options=...> to pass it on", options)
    return kept, fsid


def nfsclient(attrs: Mapping[str, str], out: _Refusals, params: dict[str, str]) -> None:
    """``attrs``: the attributes set and not empty (empty means "not set" to both)."""
    target = attrs.get("target")
    if target is not None:
        if any(c.isspace() for c in target):
            out.add("target", "contains blanks: exportfs takes one host, wildcard, "
                    "@netgroup or network per client", "write one <nfsclient> per client",
                    target)
        else:
            params["clientspec"] = target
    directory = _directory(attrs, out, "heartbeat:exportfs",
                           "in an <nfsexport> inside the <fs> that holds the directory")
    if directory is not None:
        params["directory"] = directory
    kept, from_options = _options(attrs["options"], out) if "options" in attrs else ([], None)
    if kept:
        params["options"] = ",".join(kept)
    fsid = from_options if from_options is not None else attrs.get("fsid")
    if from_options is not None and not _fsid_ok(from_options):
        out.add("options", f"has fsid={from_options}, which is not a number, root or a UUID "
                "(exports(5))", "fix it, e.g. fsid=42", attrs["options"])
    elif fsid is not None and not _fsid_ok(fsid.strip()):
        out.add("fsid", "is not a number, root or a UUID (exports(5)); an inherited fsid "
                "comes from the <fs> or <nfsexport>", "fix fsid= where it is set, e.g. "
                "fsid=\"42\"", fsid)
    elif fsid is not None:
        params["fsid"] = fsid.strip()
    elif directory is not None:
        params["fsid"] = derived_fsid(directory)
    params["unlock_on_stop"] = "false"
    if "allow_recover" in attrs:
        out.flag("allow_recover", attrs["allow_recover"])


def nfsserver(attrs: Mapping[str, str], out: _Refusals, params: dict[str, str]) -> None:
    """``attrs``: the attributes set and not empty (empty means "not set" to both)."""
    directory = _directory(attrs, out, "heartbeat:nfsserver",
                           "inside the <fs> that is to hold its state")
    nfspath = attrs.get("nfspath", NFSSERVER_NFSPATH).strip().strip("/")
    if directory is None:
        return
    infodir = re.sub("/+", "/", f"{directory}/{nfspath}").rstrip("/") or "/"
    if any(c.isspace() for c in infodir):
        out.add("nfspath", "contains blanks, which heartbeat:nfsserver's bind mount of it "
                "would split (it does not quote the path)", "choose a directory name "
                "without blanks", attrs.get("nfspath"))
        return
    params["nfs_shared_infodir"] = infodir
