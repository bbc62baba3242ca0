"""RHCS rgmanager resource types as the resource-agents OCF agents that do the same job.

An RHCS cluster.conf names its application resources by rgmanager type (``<apache>``,
``<mysql>``, ``<postgres-8>``, ``<netfs>``, ``<lvm>``, ``<nfsclient>``, ``<nfsserver>``),
run by the ``/usr/share/cluster`` shell agents that no current distribution ships. The
OCF agents of the resource-agents package (``heartbeat:apache`` ...) do the same jobs
with other parameter names and other defaults. This module says, for each attribute RHCS's cluster.rng allowed on
those elements, what it becomes: an OCF parameter (:attr:`Translation.params`), an
action timeout (:attr:`Translation.timeouts`), nothing (internal to rgmanager), or a
refusal (a :class:`~clusterd.errors.Problem` naming the element type, the attribute,
why and what to write instead), so that a migrated file either does what it did under
RHCS or is refused, never quietly does something else. Pure: no I/O, nothing started.

Mapping rules (:func:`attribute_table` lists every attribute; read from the agents in
ClusterLabs/resource-agents ``rgmanager/src/resources/*.sh.in`` and ``heartbeat/*``):

* Only OCF parameters that exist in the target agent's meta-data are produced.
* An attribute the operator did not write is left to the OCF agent's default, except
  where that default would surprise an RHCS user (marked *default kept* below); then
  RHCS's default is written out.
* ``startup_wait`` / ``shutdown_wait`` (whole seconds, as the agents' bash loops read
  them) become the ``start`` / ``stop`` action timeouts. RHCS failed the action once
  the wait ran out; the OCF agents escalate (apache and mysql kill) within their action
  timeout, so a slow stop ends killed rather than ``failed``.
* ``service_name`` is filled in by rgmanager (``inherit="service%name"``) so the agent
  could find the service's ``<ip>`` children: ignored, whatever its value.
* ``name``, ``ref`` and ``__independent_subtree``, ``__enforce_timeouts``,
  ``__max_failures``, ``__failure_expire_time`` belong to the resource tree, not to
  the agent: passed over untouched (never in ``params``, never refused here; apache
  alone also reads ``name``, for ``-D<name>``, as apache.sh did).
* Any other attribute is refused: cluster.rng did not allow it, so it is a typo or a
  newer agent's parameter this translation does not know.
* Booleans read with :func:`clusterd.truth.bool_or_none` (``1 yes true on`` / ``0 no
  false off``); a true value the OCF agent cannot honour is refused, a false one is the
  OCF behaviour anyway and is dropped.

Per type:

* ``apache`` -> ``heartbeat:apache``. ``configfile`` is always written (*default kept*:
  the OCF agent's own default is ``/etc/apache2/httpd.conf``, which does not exist on
  Red Hat systems): ``config_file`` when absolute, else ``server_root`` (RHCS default
  ``/etc/httpd``) joined with ``config_file`` (RHCS default ``conf/httpd.conf``).
  ``options`` carries, in RHCS's order, ``-D<name>`` (apache.sh started httpd with
  ``-D$OCF_RESKEY_name`` so ``<IfDefine name>`` sections applied; a name with blanks
  can never match an IfDefine and is left out), ``-d <server_root>`` when set, then
  ``httpd_options``. heartbeat:apache splits ``options`` on blanks without quote
  removal, as apache.sh did with ``httpd_options``; a ``server_root`` or config path
  with blanks is therefore refused.
* ``mysql`` -> ``heartbeat:mysql``. ``config_file`` -> ``config``; ``listen_address``
  -> ``--bind-address=ADDR`` followed by ``mysqld_options`` in
  ``additional_parameters`` (mysql.sh's order on the mysqld_safe command line).
  heartbeat:mysql passes ``--datadir``, ``--socket``, ``--pid-file``, ``--user`` and
  ``--log-error`` from its own parameters (defaults ``/var/lib/mysql`` ...) on the
  command line, which overrides the option file; mysql.sh passed only
  ``--defaults-file``, so the option file's ``datadir`` (on the shared disk, typically)
  was the one used. Left alone, the OCF agent would start an empty database on the
  node's local disk, and every failover would lose what clients had written. So the
  translation carries an :class:`OptionFile`: at each action the agent runner reads
  those five options from ``config_file`` (RHCS default ``/etc/my.cnf``) with
  ``my_print_defaults``, which follows ``!include`` as mysqld does, and passes the ones
  the file sets as the OCF parameters.
* ``postgres-8`` -> ``heartbeat:pgsql``. ``config_file`` -> ``config``;
  ``postmaster_user`` -> ``pgdba``; ``postmaster_options``: its ``-D DIR`` (RHCS's
  default was ``-D /var/lib/pgsql/data``, which pg_ctl status also needed) becomes
  ``pgdata`` because pgsql passes ``-D $pgdata`` itself, the rest becomes
  ``start_opt``.
* ``netfs`` -> ``heartbeat:Filesystem``. ``host`` + ``export`` -> ``device``
  (``host:export`` for nfs/nfs4, ``//host/export`` for cifs, as netfs.sh mounted
  them); ``mountpoint`` -> ``directory``; ``fstype`` always written (*default kept*:
  RHCS default ``nfs``; Filesystem requires it); ``options`` always written
  (*default kept*: netfs.sh mounted ``sync,soft,noac`` for nfs and ``guest`` for cifs
  when none were given, and a ``soft`` mount fails I/O instead of hanging when the
  server dies); ``force_unmount`` always written (*default kept*: Filesystem's default
  kills the processes using the mount, ``true``, or ``safe`` on RHEL 9; netfs left
  them and failed the stop unless ``force_unmount`` was set). ``no_unmount`` true is
  refused: Filesystem always unmounts on stop.
* ``lvm`` -> ``heartbeat:LVM-activate`` with ``vg_access_mode=tagging`` (HA-LVM as
  RHCS ran it: a tag on the VG or LV, ``volume_list`` in lvm.conf). ``vg_name`` ->
  ``vgname``, ``lv_name`` -> ``lvname``. ``self_fence`` true (reboot -fn when
  deactivation or tag removal fails) is refused: LVM-activate has no such step.
  ``nfslock`` is ignored: it reached lvm only by inheritance from ``<service>``, and
  lvm.sh, lvm_by_vg.sh and lvm_by_lv.sh never read it.
* ``nfsclient`` -> ``heartbeat:exportfs`` and ``nfsserver`` -> ``heartbeat:nfsserver``:
  see :mod:`clusterd.resources.agents.rhcs_nfs` (the fsid an export gets when none is set,
  the options nfsclient.sh accepted, ``unlock_on_stop`` *default kept*). ``<nfsexport>``
  is not translated: it is a built-in agent (``nfsexport.py``).

RHCS semantics that do not carry over (nothing in the attributes says whether a file
relied on them; the operator must check):

* apache.sh, mysql.sh and postgres-8.sh bound the server to the service's ``<ip>``
  addresses: apache.sh rewrote every ``Listen`` to ``Listen IP:port`` in a generated
  copy of httpd.conf, postgres-8.sh wrote ``listen_addresses`` into a generated
  postgresql.conf, mysql.sh used the first service IP when ``listen_address`` was not
  set. The OCF agents use the configuration as written (often: every address).
* apache.sh checked only its pid; heartbeat:apache's monitor fetches
  ``http://localhost/server-status`` (mod_status) unless ``statusurl`` says otherwise.
* lvm.sh also ran clustered VGs (``c`` attribute, clvmd, ``vgchange -aey``); clvmd is
  gone, such a VG must be converted to lvmlockd and written as
  ``<ocf agent="heartbeat:LVM-activate" vg_access_mode="lvmlockd" .../>``.
  LVM-activate tags with ``pacemaker`` (its ``tag`` default) where lvm.sh used the
  node name; lvm.conf's ``volume_list`` must not list ``@pacemaker`` or the VG.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from clusterd.errors import Problem
from clusterd.resources.agents import rhcs_nfs
from clusterd.truth import WORDS_HINT, bool_or_none

PASSTHROUGH = frozenset({"ref", "name", "__independent_subtree", "__enforce_timeouts",
                         "__max_failures", "__failure_expire_time"})
AGENTS = {"apache": "heartbeat:apache", "mysql": "heartbeat:mysql",
          "postgres-8": "heartbeat:pgsql", "netfs": "heartbeat:Filesystem",
          "lvm": "heartbeat:LVM-activate", **rhcs_nfs.AGENTS}
RHCS_TYPES: frozenset[str] = frozenset(AGENTS)

_IGNORED_SERVICE_NAME = "ignored: filled in by rgmanager (inherit service%name) to find the " \
                        "service's IPs"
# (rtype, attribute) -> what happens to it, in cluster.rng's order: the docs and the
# completeness test read this; translate() implements it.
RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "apache": (
        ("server_root", "param options (-d DIR) and the base of a relative config_file"),
        ("config_file", "param configfile (relative: under server_root, default /etc/httpd)"),
        ("httpd_options", "param options (after -D<name> and -d server_root)"),
        ("shutdown_wait", "stop timeout"),
        ("service_name", _IGNORED_SERVICE_NAME),
    ),
    "mysql": (
        ("config_file", "param config"),
        ("listen_address", "param additional_parameters (--bind-address=ADDR)"),
        ("mysqld_options", "param additional_parameters (after --bind-address)"),
        ("startup_wait", "start timeout"),
        ("shutdown_wait", "stop timeout"),
        ("service_name", _IGNORED_SERVICE_NAME),
    ),
    "postgres-8": (
        ("config_file", "param config"),
        ("postmaster_user", "param pgdba"),
        ("postmaster_options", "param start_opt (its -D DIR: param pgdata)"),
        ("shutdown_wait", "stop timeout"),
        ("service_name", _IGNORED_SERVICE_NAME),
    ),
    "netfs": (
        ("mountpoint", "param directory"),
        ("host", "param device (host:export, or //host/export for cifs)"),
        ("export", "param device (host:export, or //host/export for cifs)"),
        ("fstype", "param fstype (nfs when not set, as RHCS)"),
        ("no_unmount", ("refused: when true (Filesystem always unmounts on stop); "
                        "ignored when false")),
        ("force_unmount", "param force_unmount (false when not set, as RHCS)"),
        ("options", "param options (sync,soft,noac or guest when not set, as RHCS)"),
    ),
    "lvm": (
        ("vg_name", "param vgname (and vg_access_mode=tagging)"),
        ("lv_name", "param lvname"),
        ("self_fence", ("refused: when true (LVM-activate cannot reboot on a failed "
                        "deactivation); ignored when false")),
        ("nfslock", "ignored: rgmanager's lvm agents never read it"),
    ),
    **rhcs_nfs.RULES,
}
# mysql: the option file mysql.sh used when config_file is not set; the option groups
# mysqld_safe and mysqld read (MariaDB's names too); and the options heartbeat:mysql
# would otherwise override from its own parameters (see the module docstring).
MYSQL_DEFAULT_CONFIG = "/etc/my.cnf"
MYSQL_OPTION_GROUPS = ("mysqld", "server", "mysqld_safe", "mariadb", "mariadbd",
                       "client-server")
MYSQL_OPTION_PARAMS = {"datadir": "datadir", "socket": "socket", "pid-file": "pid",
                       "user": "user", "log-error": "log"}
REQUIRED = {"netfs": ("mountpoint", "host", "export"), "lvm": ("vg_name",),
            **rhcs_nfs.REQUIRED}
NETFS_FSTYPES = ("nfs", "nfs4", "cifs")
NETFS_DEFAULT_OPTIONS = {"nfs": "sync,soft,noac", "nfs4": "sync,soft,noac", "cifs": "guest"}
APACHE_SERVER_ROOT = "/etc/httpd"
APACHE_CONFIG_FILE = "conf/httpd.conf"
_SECONDS = re.compile(r"^\s*[0-9]+\s*$")


@dataclass(frozen=True)
class Translation:
    """What an RHCS element becomes: run ``agent`` with ``params`` (OCF_RESKEY_<name>;
    never name/ref/__*) and, where the file set them, these action timeouts (seconds)."""

    rtype: str
    agent: str
    params: dict[str, str]
    timeouts: dict[str, float]
    option_file: OptionFile | None = None


@dataclass(frozen=True)
class OptionFile:
    """Parameters the agent must take from the program's own option file, read on the
    node at each action (see ``mysql`` above): ``argv`` prints the options as
    ``--name=value`` lines; ``params`` maps an option (``-`` or ``_`` alike) to the OCF
    parameter it becomes. A parameter the resource sets itself wins."""

    path: str
    argv: tuple[str, ...]
    params: Mapping[str, str]


class _Refusals:
    """Problems for one element, phrased the same way for every attribute."""

    def __init__(self, rtype: str, where: str):
        self.rtype = rtype
        self.where = where
        self.problems: list[Problem] = []

    def add(self, attr: str, why: str, instead: str, value: str | None = None) -> None:
        shown = f'{attr}="{value}"' if value is not None else attr
        self.problems.append(Problem(self.where, f"<{self.rtype}> {shown}: {why}; {instead}"))

    def seconds(self, attr: str, value: str) -> float | None:
        if not _SECONDS.match(value) or int(value) < 1:
            self.add(attr, "is not a whole number of seconds of at least 1 (rgmanager's "
                     "agents compared it as an integer)", "write the seconds, e.g. 30",
                     value)
            return None
        return float(int(value))

    def flag(self, attr: str, value: str) -> bool | None:
        truth = bool_or_none(value)
        if truth is None:
            self.add(attr, "is not a boolean", WORDS_HINT, value)
        return truth

    def blank_free(self, attr: str, value: str, agent: str) -> bool:
        if any(c.isspace() for c in value):
            self.add(attr, f"contains blanks, which {agent} splits on (it does not quote "
                     "paths on the httpd command line)",
                     "move the files to a path without blanks", value)
            return False
        return True


def _set(attrs: Mapping[str, str], name: str) -> str | None:
    """The attribute's value, or None when absent or empty (an empty OCF parameter
    means "use the default" to rgmanager's agents as to the OCF ones)."""
    value = attrs.get(name)
    return value if value is not None and value.strip() else None


def _waits(attrs: Mapping[str, str], out: _Refusals, timeouts: dict[str, float],
           pairs: tuple[tuple[str, str], ...]) -> None:
    """``startup_wait``/``shutdown_wait`` seconds as the start/stop action timeouts."""
    for attr, action in pairs:
        wait = _set(attrs, attr)
        if wait is not None and (seconds := out.seconds(attr, wait)) is not None:
            timeouts[action] = seconds


def _apache(attrs: Mapping[str, str], out: _Refusals, params: dict[str, str],
            timeouts: dict[str, float]) -> None:
    server_root = _set(attrs, "server_root")
    config_file = _set(attrs, "config_file") or APACHE_CONFIG_FILE
    if config_file.startswith("/"):
        configfile = config_file
    else:
        configfile = posixpath.join(server_root or APACHE_SERVER_ROOT, config_file)
    if server_root is not None:
        out.blank_free("server_root", server_root, "heartbeat:apache")
    if out.blank_free("config_file", configfile, "heartbeat:apache"):
        params["configfile"] = configfile
    options: list[str] = []
    name = _set(attrs, "name")
    if name is not None and not any(c.isspace() for c in name):
        options.append(f"-D{name}")
    if server_root is not None:
        options += ["-d", server_root]
    if (httpd_options := _set(attrs, "httpd_options")) is not None:
        options.append(httpd_options.strip())
    if options:
        params["options"] = " ".join(options)
    _waits(attrs, out, timeouts, (("shutdown_wait", "stop"),))


def _mysql(attrs: Mapping[str, str], out: _Refusals, params: dict[str, str],
           timeouts: dict[str, float]) -> None:
    if (config := _set(attrs, "config_file")) is not None:
        params["config"] = config
    extra: list[str] = []
    if (address := _set(attrs, "listen_address")) is not None:
        if any(c.isspace() for c in address):
            out.add("listen_address", "is not one address",
                    "give a single IP address (mysqld --bind-address)", address)
        else:
            extra.append(f"--bind-address={address}")
    if (options := _set(attrs, "mysqld_options")) is not None:
        extra.append(options.strip())
    if extra:
        params["additional_parameters"] = " ".join(extra)
    _waits(attrs, out, timeouts, (("startup_wait", "start"), ("shutdown_wait", "stop")))


def _split_data_dir(options: str) -> tuple[str | None, list[str]] | None:
    """``-D DIR`` / ``-DDIR`` out of postmaster options (the last one wins, as for
    postgres), and the other words; None when the words do not parse (shell quoting)."""
    try:
        words = shlex.split(options)
    except ValueError:
        return None
    data_dir: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "-D" and i + 1 < len(words):
            data_dir = words[i + 1]
            i += 2
            continue
        if word.startswith("-D") and len(word) > 2:
            data_dir = word[2:]
        else:
            rest.append(word)
        i += 1
    return data_dir, rest


def _postgres(attrs: Mapping[str, str], out: _Refusals, params: dict[str, str],
              timeouts: dict[str, float]) -> None:
    if (config := _set(attrs, "config_file")) is not None:
        params["config"] = config
    if (user := _set(attrs, "postmaster_user")) is not None:
        params["pgdba"] = user
    if (options := _set(attrs, "postmaster_options")) is not None:
        split = _split_data_dir(options)
        if split is None:
            out.add("postmaster_options", "has unbalanced quotes (postgres-8.sh passed it "
                    "through a shell)", "fix the quoting")
        else:
            data_dir, rest = split
            if data_dir is not None:
                params["pgdata"] = data_dir
            if rest:
                params["start_opt"] = shlex.join(rest)
    _waits(attrs, out, timeouts, (("shutdown_wait", "stop"),))


def _netfs(attrs: Mapping[str, str], out: _Refusals, params: dict[str, str],
           timeouts: dict[str, float]) -> None:
    fstype = (_set(attrs, "fstype") or "nfs").strip()
    if fstype not in NETFS_FSTYPES:
        out.add("fstype", "is not a type netfs mounted (nfs, nfs4 or cifs)",
                f'use <ocf agent="heartbeat:Filesystem" device=... directory=... '
                f'fstype="{fstype}"/> for other network file systems', fstype)
        return
    host, export = _set(attrs, "host"), _set(attrs, "export")
    if host is not None and export is not None:
        params["device"] = f"//{host}/{export}" if fstype == "cifs" else f"{host}:{export}"
    mountpoint = _set(attrs, "mountpoint")
    if mountpoint is not None:
        if not mountpoint.startswith("/"):
            out.add("mountpoint", "is not an absolute path (netfs refused it too)",
                    "write the full path, e.g. /mnt/data", mountpoint)
        else:
            params["directory"] = mountpoint
    params["fstype"] = fstype
    params["options"] = (_set(attrs, "options") or NETFS_DEFAULT_OPTIONS[fstype]).strip()
    force_on = out.flag("force_unmount", attrs["force_unmount"]) \
        if "force_unmount" in attrs else False
    if force_on is not None:
        params["force_unmount"] = "true" if force_on else "false"
    if "no_unmount" in attrs and out.flag("no_unmount", attrs["no_unmount"]):
        out.add("no_unmount", "netfs left the export mounted on this node after a stop "
                "or relocation, and heartbeat:Filesystem always unmounts on stop",
                "remove no_unmount if nothing outside the service uses the mount, or mount "
                "it outside the cluster (/etc/fstab) and drop this <netfs>",
                attrs["no_unmount"])


def _lvm(attrs: Mapping[str, str], out: _Refusals, params: dict[str, str],
         timeouts: dict[str, float]) -> None:
    if (vg := _set(attrs, "vg_name")) is not None:
        params["vgname"] = vg
    if (lv := _set(attrs, "lv_name")) is not None:
        params["lvname"] = lv
    params["vg_access_mode"] = "tagging"
    if "self_fence" in attrs and out.flag("self_fence", attrs["self_fence"]):
        out.add("self_fence", "heartbeat:LVM-activate cannot reboot the node when "
                "deactivation or tag removal fails (lvm.sh ran reboot -fn)",
                "remove self_fence: a failed stop then leaves the service failed for an "
                "administrator, as RHCS did without it", attrs["self_fence"])
    if "nfslock" in attrs:
        out.flag("nfslock", attrs["nfslock"])


def _given(translator: Callable[[Mapping[str, str], _Refusals, dict[str, str]], None]
           ) -> Callable[[Mapping[str, str], _Refusals, dict[str, str], dict[str, float]],
                         None]:
    """An ``rhcs_nfs`` translator, shown only the attributes set and not empty."""
    def run(attrs: Mapping[str, str], out: _Refusals, params: dict[str, str],
            timeouts: dict[str, float]) -> None:
        translator({a: v for a, v in attrs.items() if _set(attrs, a) is not None}, out,
                   params)
    return run


_TRANSLATE: dict[str, Callable[[Mapping[str, str], _Refusals, dict[str, str],
                                dict[str, float]], None]] = {
    "apache": _apache, "mysql": _mysql, "postgres-8": _postgres, "netfs": _netfs,
    "lvm": _lvm, "nfsclient": _given(rhcs_nfs.nfsclient),
    "nfsserver": _given(rhcs_nfs.nfsserver),
}


def translate(rtype: str, attrs: Mapping[str, str], where: str) -> Translation | list[Problem]:
    """The OCF agent, parameters and timeouts for RHCS element ``rtype`` with every
    attribute as written in ``attrs``; or every reason it cannot be honoured, each
    naming the attribute and what to write instead (see the module docstring)."""
    if rtype not in RHCS_TYPES:
        return [Problem(where, f"<{rtype}> is not an RHCS type translated to an OCF agent "
                               f"(translated: {', '.join(sorted(RHCS_TYPES))})")]
    out = _Refusals(rtype, where)
    known = {attr for attr, _what in RULES[rtype]}
    agent = AGENTS[rtype]
    for attr in attrs:
        if attr not in known and attr not in PASSTHROUGH:
            out.add(attr, f"is not an attribute of RHCS <{rtype}> (cluster.rng allows "
                    f"{', '.join(sorted(known))})",
                    f'remove it, or write <ocf agent="{agent}" .../> with the OCF '
                    "parameter you meant")
    missing = [a for a in REQUIRED.get(rtype, ()) if _set(attrs, a) is None]
    if missing:
        out.add(", ".join(missing), "required by RHCS <" + rtype + "> and not set",
                "add " + " and ".join(f'{a}="..."' for a in missing))
    params: dict[str, str] = {}
    timeouts: dict[str, float] = {}
    _TRANSLATE[rtype](attrs, out, params, timeouts)
    if out.problems:
        return out.problems
    option_file = None
    if rtype == "mysql":
        path = params.get("config", MYSQL_DEFAULT_CONFIG)
        option_file = OptionFile(path, ("my_print_defaults", f"--defaults-file={path}",
                                        *MYSQL_OPTION_GROUPS), MYSQL_OPTION_PARAMS)
    return Translation(rtype=rtype, agent=agent, params=params, timeouts=timeouts,
                       option_file=option_file)


def option_file_params(option_file: OptionFile, printed: str) -> dict[str, str]:
    """The OCF parameters in what ``option_file.argv`` printed (``--name=value`` lines, in
    the order the program read them): the last value of an option wins, as for mysqld;
    other lines and empty values are ignored."""
    out: dict[str, str] = {}
    for line in printed.splitlines():
        name, sep, value = line.strip().removeprefix("--").partition("=")
        param = option_file.params.get(name.replace("_", "-"))
        if line.strip().startswith("--") and sep and param and value:
            out[param] = value
    return out


def attribute_table() -> list[tuple[str, str, str, str]]:
    """(rtype, RHCS attribute, what happens, OCF agent) for every attribute cluster.rng
    allowed on the translated types, in the schema's order (for the docs)."""
    return [(rtype, attr, what, AGENTS[rtype])
            for rtype, rules in RULES.items() for attr, what in rules]


def markdown_table() -> str:
    """The docs' table (docs/rhcs-migration.md, "RHCS resource types run through OCF
    agents"; a test keeps that copy equal): ``python -m clusterd.resources.agents.rhcs_types``."""
    lines = ["| RHCS type | run by | attribute | what clusterd does with it |",
             "|---|---|---|---|"]
    lines += [f"| `{rtype}` | `{agent}` | `{attr}` | {what} |"
              for rtype, attr, what, agent in attribute_table()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
