"""The web service's users file (auth = file) and ``clusterd-web-user``, which manages it.

One line per user, ``NAME:ROLE:scrypt$N$r$p$SALT_B64$HASH_B64`` (hashlib.scrypt, N=2**14,
r=8, p=1 when made here; the parameters are read from each line). ROLE is ``admin`` or
``viewer``. Blank lines and lines starting with ``#`` are ignored. The file is 0640
root:clusterd-web; ``clusterd-web-user`` rewrites it atomically (a temporary file beside
it, then a rename) keeping its owner and mode::

    clusterd-web-user --file /etc/clusterd/web/users add alice --role admin < pw
    clusterd-web-user --file /etc/clusterd/web/users remove alice
    clusterd-web-user --file /etc/clusterd/web/users list

The password is read from stdin (never from the command line): the first line, or asked
twice on a terminal.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import getpass
import hashlib
import hmac
import os
import re
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

ROLES = ("admin", "viewer")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
MAX_PASSWORD = 1024
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")
MAX_FILE_BYTES = 4 * 1024 * 1024


class UsersFileError(Exception):
    """The users file was refused; ``problems`` are ``file:line: what`` sentences."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class User:
    name: str
    role: str
    hash: str


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
                  p: int = SCRYPT_P, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                            maxmem=_maxmem(n, r, p), dklen=HASH_BYTES)
    return (f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def _maxmem(n: int, r: int, p: int) -> int:
    return 128 * r * (n + p + 2) + 1024 * 1024


def _parse_hash(text: str) -> tuple[int, int, int, bytes, bytes] | str:
    """(n, r, p, salt, digest), or what is wrong with ``text``."""
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return "the hash must be scrypt$N$r$p$SALT_B64$HASH_B64 (make it with clusterd-web-user)"
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return "the hash's N, r, p must be numbers and its salt and hash base64"
    if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16:
        return f"scrypt parameters N={n} r={r} p={p} out of range (N a power of 2 up to 2**20)"
    if len(salt) < 8 or len(digest) < 16:
        return "the hash's salt or digest is too short"
    return n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    parsed = _parse_hash(stored)
    if isinstance(parsed, str):
        return False
    n, r, p, salt, digest = parsed
    got = hashlib.scrypt(password.encode("utf-8", "surrogatepass")[:4 * MAX_PASSWORD],
                         salt=salt, n=n, r=r, p=p, maxmem=_maxmem(n, r, p), dklen=len(digest))
    return hmac.compare_digest(got, digest)


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the user is unknown, so that the answer takes as long."""
    return hash_password("clusterd-web", salt=b"\0" * SALT_BYTES)


def parse(text: str, source: str) -> dict[str, User]:
    users: dict[str, User] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{number}"
        fields = line.split(":")
        if len(fields) != 3:
            problems.append(f"{where}: expected NAME:ROLE:HASH (3 fields separated by ':'), "
                            f"found {len(fields)} field(s)")
            continue
        name, role, stored = fields
        if not NAME_RE.fullmatch(name):
            problems.append(f"{where}: user name {name!r} is not valid (letters, digits, "
                            "'_', '.', '@', '-'; at most 64)")
            continue
        if role not in ROLES:
            problems.append(f"{where}: user {name}: role {role!r} must be admin or viewer")
            continue
        bad = _parse_hash(stored)
        if isinstance(bad, str):
            problems.append(f"{where}: user {name}: {bad}")
            continue
        if name in users:
            problems.append(f"{where}: user {name} is listed twice")
            continue
        users[name] = User(name, role, stored)
    if problems:
        raise UsersFileError(problems)
    return users


def read(path: str) -> dict[str, User]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_FILE_BYTES + 1)
    except UnicodeDecodeError:
        raise UsersFileError([f"{path}: not UTF-8 text"]) from None
    if len(text) > MAX_FILE_BYTES:
        raise UsersFileError([f"{path}: larger than {MAX_FILE_BYTES} bytes"])
    return parse(text, path)


def check(path: str) -> list[str]:
    """The users file's problems for the config check (``[]``: fine)."""
    try:
        users = read(path)
    except UsersFileError as exc:
        return list(exc.problems)
    except OSError as exc:
        return [f"{path}: cannot read it ({exc.strerror})"]
    if not users:
        return [(f"{path}: no users; add one with clusterd-web-user --file {path} add NAME "
                "--role admin")]
    return []


class FileAuth:
    """Authenticate against the users file, re-read when it changes (mtime, size)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._users: dict[str, User] = {}

    def _load(self) -> dict[str, User]:
        st = os.stat(self.path)
        stamp = (st.st_mtime, st.st_size)
        if stamp != self._stamp:
            self._users = read(self.path)
            self._stamp = stamp
        return self._users

    def authenticate(self, name: str, password: str) -> str | None:
        """The user's role, or None (blocking: scrypt; call it in a thread)."""
        user = self._load().get(name)
        ok = verify_password(password, user.hash if user else _dummy_hash())
        return user.role if user is not None and ok else None


# ---------------------------------------------------------------- clusterd-web-user


def _format(users: dict[str, User]) -> str:
    return "".join(f"{u.name}:{u.role}:{u.hash}\n" for u in users.values())


def write(path: str, users: dict[str, User]) -> None:
    """Atomically, keeping an existing file's owner and mode (new: 0640)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        st = os.stat(path)
        mode, owner = st.st_mode & 0o777, (st.st_uid, st.st_gid)
    except FileNotFoundError:
        mode, owner = 0o640, None
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("# clusterd-web users: NAME:ROLE:HASH (manage with clusterd-web-user)\n")
            f.write(_format(users))
            f.flush()
            os.fsync(f.fileno())
        if owner is not None and os.geteuid() == 0:
            os.chown(tmp, *owner)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_password(stdin: TextIO) -> str:
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password again: "):
            raise ValueError("the passwords differ")
        password = first
    else:
        password = stdin.readline(MAX_PASSWORD + 2).rstrip("\r\n")
    if not password:
        raise ValueError("empty password (give it on stdin)")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"password longer than {MAX_PASSWORD} characters")
    return password


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None,
         out: TextIO | None = None) -> int:
    ap = argparse.ArgumentParser(prog="clusterd-web-user",
                                 description="Manage clusterd-web's users file.")
    ap.add_argument("--file", default="/etc/clusterd/web/users", help="the users file")
    sub = ap.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a user or change their password and role "
                                     "(password on stdin)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    rm = sub.add_parser("remove", help="remove a user")
    rm.add_argument("name")
    sub.add_parser("list", help="list the users and their roles")
    args = ap.parse_args(argv)
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    try:
        try:
            users = read(args.file)
        except FileNotFoundError:
            if args.command != "add":
                raise
            users = {}
        if args.command == "list":
            for u in users.values():
                out.write(f"{u.name} {u.role}\n")
            return 0
        if not NAME_RE.fullmatch(args.name):
            ap.error(f"user name {args.name!r} is not valid (letters, digits, '_', '.', '@', "
                     "'-'; at most 64)")
        if args.command == "remove":
            if args.name not in users:
                sys.stderr.write(f"clusterd-web-user: {args.file}: no user {args.name}\n")
                return 1
            del users[args.name]
            write(args.file, users)
            out.write(f"removed {args.name}\n")
            return 0
        password = _read_password(stdin)
        existed = args.name in users
        users[args.name] = User(args.name, args.role, hash_password(password))
        write(args.file, users)
        out.write(f"{'updated' if existed else 'added'} {args.name} ({args.role})\n")
        return 0
    except UsersFileError as exc:
        sys.stderr.write("".join(f"clusterd-web-user: {p}\n" for p in exc.problems))
        return 1
    except ValueError as exc:
        sys.stderr.write(f"clusterd-web-user: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"clusterd-web-user: {args.file}: {exc.strerror or exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
