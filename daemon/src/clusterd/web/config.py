"""/etc/clusterd/web.conf: the web service's settings, every one checked at start.

INI, one section ``[web]`` (docs/web.md lists the options). :func:`load` returns a frozen
:class:`WebConfig` or raises :class:`WebConfigError` carrying every problem at once, each
sentence naming the file, the option, the value and what to do::

    /etc/clusterd/web.conf: [web] port = 'abc': not a port number (1-65535)

Checks that need the file system (certificate and key, users file, metrics token) are
made here too, so that ``clusterd-web --check`` finds them before a restart does.
"""

from __future__ import annotations

import configparser
import grp
import importlib.util
import ipaddress
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_PATH = "/etc/clusterd/web.conf"
DEFAULT_SOCKET = "/run/cluster/clusterd.sock"   # clusterd.control.access.DEFAULT_SOCKET
SECTION = "web"
MIN_TOKEN_CHARS = 16
MAX_FILE_BYTES = 1024 * 1024

DEFAULTS: dict[str, str] = {
    "listen": "0.0.0.0",
    "port": "8084",
    "certificate": "/etc/clusterd/web/cert.pem",
    "key": "/etc/clusterd/web/key.pem",
    "auth": "file",
    "users_file": "/etc/clusterd/web/users",
    "pam_service": "clusterd-web",
    "pam_admin_group": "hacluster-admin",
    "pam_viewer_group": "haclient",
    "control_socket": DEFAULT_SOCKET,
    "session_idle": "900",
    "session_max": "28800",
    "metrics_token_file": "",
}


class WebConfigError(Exception):
    """The config was refused; ``problems`` holds every sentence (without the prefix)."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


@dataclass(frozen=True)
class WebConfig:
    listen: tuple[str, ...] = ("0.0.0.0",)
    port: int = 8084
    certificate: str = DEFAULTS["certificate"]
    key: str = DEFAULTS["key"]
    auth: str = "file"
    users_file: str = DEFAULTS["users_file"]
    pam_service: str = "clusterd-web"
    pam_admin_group: str = "hacluster-admin"
    pam_viewer_group: str = "haclient"
    control_socket: str = DEFAULT_SOCKET
    session_idle: int = 900
    session_max: int = 28800
    metrics_token: str | None = None       # the token itself (read from the file at start)
    path: str = DEFAULT_PATH


def _opt(name: str, value: str) -> str:
    return f"[{SECTION}] {name} = {value!r}"


def _int(name: str, value: str, low: int, high: int, what: str,
         problems: list[str]) -> int | None:
    try:
        number = int(value.strip(), 10)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        problems.append(f"{_opt(name, value)}: {what}")
        return None
    return number


def _readable_file(name: str, value: str, problems: list[str], what: str) -> bool:
    if not os.path.isabs(value):
        problems.append(f"{_opt(name, value)}: give an absolute path to {what}")
        return False
    try:
        with open(value, "rb") as f:
            f.read(1)
    except FileNotFoundError:
        problems.append(f"{_opt(name, value)}: no such file; create {what} or point "
                        f"{name} at it")
        return False
    except IsADirectoryError:
        problems.append(f"{_opt(name, value)}: is a directory, not {what}")
        return False
    except OSError as exc:
        problems.append(f"{_opt(name, value)}: cannot read it ({exc.strerror}); the "
                        f"clusterd-web user (uid {os.geteuid()}) needs read access to {what}")
        return False
    return True


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _read_token(value: str, problems: list[str]) -> str | None:
    if not _readable_file("metrics_token_file", value, problems, "the metrics bearer token"):
        return None
    st = os.stat(value)
    if st.st_mode & 0o004:
        problems.append(f"{_opt('metrics_token_file', value)}: readable by everyone (mode "
                        f"{st.st_mode & 0o777:o}); chmod 0640 it")
        return None
    with open(value, encoding="utf-8", errors="replace") as f:
        token = f.read(4096).strip()
    if len(token) < MIN_TOKEN_CHARS or not token.isprintable() or " " in token:
        problems.append(f"{_opt('metrics_token_file', value)}: the token must be one word of "
                        f"at least {MIN_TOKEN_CHARS} printable characters (e.g. openssl rand "
                        "-hex 32 > FILE)")
        return None
    return token


def load(path: str = DEFAULT_PATH, *,
         users_check: Callable[[str], list[str]] | None = None) -> WebConfig:
    """Read and check ``path``; :class:`WebConfigError` with every problem.
    ``users_check(path) -> problems`` checks the users file (auth = file)."""
    problems: list[str] = []
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"),
                                       default_section="__none__")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise WebConfigError(path, [("no such file; create it (docs/web.md lists the "
                                    "options) or give --config PATH")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WebConfigError(path, [f"cannot read it: {exc}"]) from None
    if len(text) > MAX_FILE_BYTES:
        raise WebConfigError(path, [f"larger than {MAX_FILE_BYTES} bytes: not a config file"])
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise WebConfigError(path, [f"not an INI file: {str(exc).splitlines()[0]}"]) from None
    if not parser.has_section(SECTION):
        raise WebConfigError(path, [(f"no [{SECTION}] section; the options go under a line "
                                    f"[{SECTION}]")])
    others = [s for s in parser.sections() if s != SECTION]
    if others:
        problems.append(f"unknown section(s) {', '.join(f'[{s}]' for s in others)}: only "
                        f"[{SECTION}] is read")
    raw = dict(parser.items(SECTION))
    for name in sorted(set(raw) - set(DEFAULTS)):
        problems.append(f"{_opt(name, raw[name])}: unknown option; known options: "
                        f"{', '.join(sorted(DEFAULTS))}")
    v = {**DEFAULTS, **{k: val.strip() for k, val in raw.items() if k in DEFAULTS}}

    listen: list[str] = []
    for part in v["listen"].split(","):
        addr = part.strip()
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            problems.append(f"{_opt('listen', v['listen'])}: {addr!r} is not an IP address; "
                            "give addresses separated by commas (0.0.0.0 for all)")
            continue
        listen.append(addr)
    port = _int("port", v["port"], 1, 65535, "not a port number (1-65535)", problems)
    idle = _int("session_idle", v["session_idle"], 60, 7 * 86400,
                "not a number of seconds from 60 to 604800", problems)
    smax = _int("session_max", v["session_max"], 60, 30 * 86400,
                "not a number of seconds from 60 to 2592000", problems)
    if idle is not None and smax is not None and idle > smax:
        problems.append(f"{_opt('session_idle', v['session_idle'])}: longer than session_max "
                        f"({smax}); make session_idle at most session_max")
    auth = v["auth"]
    if auth not in ("file", "pam"):
        problems.append(f"{_opt('auth', auth)}: must be 'file' (users_file) or 'pam'")
    elif auth == "file":
        if _readable_file("users_file", v["users_file"], problems, "the users file "
                          "(clusterd-web-user --file FILE add NAME --role admin)"):
            problems.extend(users_check(v["users_file"]) if users_check else [])
    else:
        if importlib.util.find_spec("pam") is None:
            problems.append(f"{_opt('auth', auth)}: the python-pam module is not installed "
                            "(pip install 'clusterd[pam]', the roles' wheelhouse pins "
                            "python-pam), or use auth = file")
        for name in ("pam_admin_group", "pam_viewer_group"):
            if not _group_exists(v[name]):
                problems.append(f"{_opt(name, v[name])}: no such group on this node; create "
                                "it (groupadd) or name an existing one")
        if not v["pam_service"] or "/" in v["pam_service"]:
            problems.append(f"{_opt('pam_service', v['pam_service'])}: give the name of a "
                            "file in /etc/pam.d")
    if not os.path.isabs(v["control_socket"]):
        problems.append(f"{_opt('control_socket', v['control_socket'])}: give an absolute "
                        "path (clusterd's is /run/cluster/clusterd.sock)")
    cert_ok = _readable_file("certificate", v["certificate"], problems, "the certificate (PEM)")
    key_ok = _readable_file("key", v["key"], problems, "the private key (PEM)")
    if cert_ok and key_ok:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                v["certificate"], v["key"])
        except (ssl.SSLError, ValueError) as exc:
            problems.append(f"{_opt('certificate', v['certificate'])} with "
                            f"{_opt('key', v['key'])}: cannot load them as a PEM certificate "
                            f"and its key ({exc}); check they are a matching pair")
    token = _read_token(v["metrics_token_file"], problems) if v["metrics_token_file"] else None
    if problems:
        raise WebConfigError(path, problems)
    assert port is not None and idle is not None and smax is not None
    return WebConfig(listen=tuple(listen), port=port, certificate=v["certificate"],
                     key=v["key"], auth=auth, users_file=v["users_file"],
                     pam_service=v["pam_service"], pam_admin_group=v["pam_admin_group"],
                     pam_viewer_group=v["pam_viewer_group"],
                     control_socket=v["control_socket"], session_idle=idle,
                     session_max=smax, metrics_token=token, path=path)


def ssl_context(conf: WebConfig) -> ssl.SSLContext:
    """The server's TLS context: TLS 1.2 or later, the configured certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(conf.certificate, conf.key)
    return ctx
