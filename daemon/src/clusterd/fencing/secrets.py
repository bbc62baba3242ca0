"""Secrets at rest outside cluster.conf (RELIABILITY S9, like Pacemaker's cibsecret).

A fence parameter may hold a *reference* instead of the secret itself::

    passwd="secret://ipmi_node1#sha256=9f86d081884c7d65..."

The value is read, at run time and on the node that runs the agent, from the local file
``/etc/cluster/secrets/ipmi_node1`` (first line, without the line end). The file must be
a regular file (not a symlink) owned by root with mode 0600 or stricter, at most 4 KiB.
The sha256 of the value must match the checksum in cluster.conf: the replicated config
pins the content, so a node whose local file drifted (an old password, a typo) refuses
to use it and says so, instead of failing later with a wrong password. Nothing of the
value appears in an error; the resolved value is added to the agent output's redactor.

:func:`reference` builds the string to put in cluster.conf for a value.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat

from clusterd.errors import AgentError

PREFIX = "secret://"
DEFAULT_DIR = "/etc/cluster/secrets"
MAX_SIZE = 4096
_REF = re.compile(r"^secret://(?P<name>[A-Za-z0-9_.-]{1,128})#sha256=(?P<sum>[0-9a-f]{64})$")


def is_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def reference(name: str, value: str) -> str:
    """The cluster.conf value that points at secret file ``name`` holding ``value``."""
    ref = f"{PREFIX}{name}#sha256={hashlib.sha256(value.encode()).hexdigest()}"
    if not _REF.match(ref) or name.startswith("."):
        raise ValueError(f"secret name {name!r} must match [A-Za-z0-9_.-]+ and not start "
                         f"with a dot")
    return ref


def _refuse(key: str, why: str) -> AgentError:
    return AgentError("?", "secret", None, reason=f"parameter {key}: {why}")


def resolve(key: str, value: str, directory: str = DEFAULT_DIR) -> str:
    """The secret a reference points at; AgentError (without the value) if refused."""
    m = _REF.match(value)
    if m is None or m.group("name").startswith("."):
        raise _refuse(key, "a secret reference must look like secret://NAME#sha256=<64 hex> "
                           "(NAME: letters, digits, _ . -)")
    path = os.path.join(directory, m.group("name"))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise _refuse(key, f"secret file {path} cannot be opened: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(key, f"secret file {path} is not a regular file")
        if st.st_uid != 0:
            raise _refuse(key, f"secret file {path} is owned by uid {st.st_uid}, not root")
        if st.st_mode & 0o077:
            raise _refuse(key, f"secret file {path} has mode {stat.S_IMODE(st.st_mode):04o}; "
                               f"make it 0600 (chmod 600 {path})")
        if st.st_size > MAX_SIZE:
            raise _refuse(key, f"secret file {path} is larger than {MAX_SIZE} bytes")
        data = os.read(fd, MAX_SIZE + 1)
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(key, f"secret file {path} is not UTF-8 text") from None
    secret = text.splitlines()[0] if text else ""
    if not secret:
        raise _refuse(key, f"secret file {path} is empty")
    digest = hashlib.sha256(secret.encode()).hexdigest()
    if not hmac.compare_digest(digest, m.group("sum")):
        raise _refuse(key, f"secret file {path} does not match the checksum in cluster.conf "
                           f"(changed on this node only? update the file or the reference)")
    return secret
