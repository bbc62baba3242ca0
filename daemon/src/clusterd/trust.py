"""Which programs clusterd lets run as root, and why (RELIABILITY.md S11, S13).

cluster.conf names programs that run as root: fence and resource agents (by name, resolved
under fixed directories), and program parameters. Anyone who can change the file, or who
finds a writable spot on a program's path, would otherwise own every node. Two checks:

* the value (:func:`value_problem`, pure; every validation path): one absolute, normalized
  path, nothing else. No arguments and no shell metacharacters (nothing runs through a
  shell), and no shell or interpreter (``/bin/sh``, ``python3``, ``perl``, ``env`` ...):
  given code or a script path they run anything, so ``sh -c '...'``, ``python -c``,
  ``perl -e`` and their argument-free forms are all refused. The way to run a command
  line is a root-owned script with its own ``#!`` line, named by its path.
* the file (:func:`untrusted_reason`, :func:`program_problem`): a regular executable owned by
  root and not writable by group or others, and every directory above it, both as written
  and after symlinks, root-owned and not writable by group or others (a root-owned sticky
  directory such as /tmp is accepted: only root can replace a root-owned entry there).
  Checked when a config is validated on a node where the file exists, and again just before
  every run (the file may have changed since).

Program parameters (:func:`is_program_param`): on fence devices, every ``*_script``
(``passwd_script``: clusterd runs it for the password), ``exec`` and the helper-binary paths
of the fence-agents library (``ssh_path``, ``ipmitool_path`` ...: the agent runs them);
inside ``<rm>``, every ``*_script``, ``<script file>`` and ``<vm status_program>``; the quorum
disk's ``<heuristic program>`` (qdisk(5) ran it with ``sh -c``: put the command line in a script). Names
compare with ``-`` read as ``_`` (fence agents accept both).
"""

from __future__ import annotations

import os
import re
import stat
from functools import lru_cache

FENCE_PROGRAM_OPTIONS = frozenset({
    "exec",                                          # fence_vmware: vmrun / vmware-cmd
    "telnet_path", "ssh_path", "gnutlscli_path", "sudo_path",  # the fencing library
    "snmpwalk_path", "snmpset_path", "snmpget_path",
    "ipmitool_path", "amttool_path", "sbd_path", "mpathpersist_path",  # agent helpers
    "sg_persist_path", "sg_turs_path", "vgs_path", "corosync_cmap_path",
})
RESOURCE_PROGRAM_PARAMS = frozenset({("script", "file"), ("vm", "status_program")})
FENCE_TAGS = frozenset({"fencedevice", "device"})
# Shells, interpreters and wrappers that run code or another program they are given (a
# fence agent passes its own arguments to its helper binaries: ``ssh_path=/usr/bin/env``
# would run whatever ``ssh_options`` says). ``sudo`` is not here: ``sudo_path`` names it.
INTERPRETER = re.compile(
    r"^(?:(?:ba|da|k|mk|z|c|tc|a|ya|fi|pdk|lk)?sh|busybox|toybox|env|xargs|nohup|nice|"
    r"ionice|timeout|setsid|chroot|stdbuf|setpriv|systemd-run|"
    r"python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|php[0-9.]*|node(?:js)?|lua[0-9.]*|"
    r"luajit|tclsh[0-9.]*|wish[0-9.]*|[gmn]?awk|expect|guile[0-9.]*|osascript)$")
_PATH_CHARS = re.compile(r"^[A-Za-z0-9._+,:@=/-]+$")
_HINT = ("name one root-owned executable by its absolute path, without arguments (it runs "
         "without a shell); to run a command line, put it in a root-owned script (mode "
         "0755, in a root-owned directory) and name that script")


def normalize(name: str) -> str:
    return name.lower().replace("-", "_")


@lru_cache(maxsize=4096)  # asked for every attribute of every element of a config
def is_program_param(tag: str, name: str, in_rm: bool) -> bool:
    """Whether attribute ``name`` of element ``tag`` names a program to run as root."""
    key = normalize(name)
    if tag in FENCE_TAGS:
        return key.endswith("_script") or key in FENCE_PROGRAM_OPTIONS
    if in_rm:
        return key.endswith("_script") or (tag, key) in RESOURCE_PROGRAM_PARAMS
    return (tag, key) in (("heuristic", "program"), ("alert", "program"))


def value_problem(value: str) -> str | None:
    """Why ``value`` is not one plain absolute path of a non-interpreter (pure), or None.
    Never echoes more than the first word: a refused command line may hold a password."""
    words = value.split()
    if not words:
        return f"is empty; {_HINT}"
    first = words[0]
    if len(words) > 1:
        if INTERPRETER.match(os.path.basename(first)):
            return (f"runs inline code through {first!r} (a shell or interpreter with "
                    f"arguments): refused; {_HINT}")
        return f"has arguments ({first!r} followed by {len(words) - 1} more); {_HINT}"
    if not _PATH_CHARS.match(value):
        odd = "".join(sorted({c for c in value if not _PATH_CHARS.match(c)}))
        return (f"contains {odd!r}, characters a shell would interpret or that no plain path "
                f"needs (allowed: letters, digits and . _ + , : @ = / -); {_HINT}")
    if not value.startswith("/"):
        return f"is not an absolute path; {_HINT}"
    if os.path.normpath(value) != value or value.startswith("//"):
        return (f"is not a normalized path (no '.', '..', '//' or trailing '/'): write "
                f"{os.path.normpath(value)!r}")
    if INTERPRETER.match(os.path.basename(value)):
        return (f"is a shell or interpreter ({os.path.basename(value)}), which runs whatever "
                f"code it is given; {_HINT}")
    return None


def untrusted_reason(path: str) -> str | None:
    """Why ``path`` may not be executed as root, or None if it may: it must be a regular
    executable file owned by root and not writable by group or others, and so must every
    directory above it, as written and after symlinks (a root-owned sticky directory such
    as /tmp is accepted)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if not st.st_mode & stat.S_IXUSR:
        return f"{path} is not executable"
    problem = _owner_problem(path, st)
    if problem:
        return problem
    written = os.path.dirname(os.path.abspath(path))
    resolved = os.path.dirname(os.path.realpath(path))
    for directory in dict.fromkeys((written, resolved)):
        problem = _chain_problem(directory)
        if problem:
            return problem
    return None


def _chain_problem(directory: str) -> str | None:
    while True:
        try:
            dst = os.stat(directory)
        except OSError as exc:
            return f"{directory}: {exc.strerror}"
        problem = _owner_problem(directory, dst, sticky_ok=True)
        if problem:
            return problem
        if directory == "/":
            return None
        directory = os.path.dirname(directory)


def _owner_problem(path: str, st: os.stat_result, sticky_ok: bool = False) -> str | None:
    if st.st_uid != 0:
        return f"{path} is owned by uid {st.st_uid}, not root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        if sticky_ok and st.st_mode & stat.S_ISVTX:
            return None
        return f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def program_problem(value: str) -> str | None:
    """Everything, just before a run: the value, the file and its directories, and what a
    symlink resolves to (not an interpreter either). Blocking (stat): call it in a thread
    from the event loop."""
    problem = value_problem(value)
    if problem is not None:
        return problem
    problem = untrusted_reason(value)
    if problem is not None:
        return f"cannot be run as root: {problem}"
    real = os.path.realpath(value)
    if INTERPRETER.match(os.path.basename(real)):
        return (f"resolves to {real}, a shell or interpreter, which runs whatever code it is "
                f"given; {_HINT}")
    return None
