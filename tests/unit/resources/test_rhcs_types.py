"""RHCS rgmanager types (apache, mysql, postgres-8, netfs, lvm, nfsclient, nfsserver)
translate onto the resource-agents OCF agents attribute by attribute, or are refused naming
the attribute (clusterd.resources.agents.rhcs_types and rhcs_nfs; rules read from
rgmanager's *.sh.in agents)."""

from __future__ import annotations

from pathlib import Path

import pytest
from clusterd.errors import Problem
from clusterd.resources.agents import rhcs_nfs, rhcs_types
from clusterd.resources.agents.rhcs_types import (
    MYSQL_OPTION_PARAMS,
    RHCS_TYPES,
    OptionFile,
    Translation,
    attribute_table,
    option_file_params,
    translate,
)

WHERE = "/cluster/rm/service[@name='svc']"


def _my_cnf(path: str) -> OptionFile:
    return OptionFile(path, ("my_print_defaults", f"--defaults-file={path}", "mysqld",
                             "server", "mysqld_safe", "mariadb", "mariadbd", "client-server"),
                      MYSQL_OPTION_PARAMS)

# Every attribute RHCS's cluster.rng allowed on these elements, besides ref/name/__*
# (reference/cluster.rng, <element name="apache"> ...), typed out independently.
RNG_ATTRIBUTES = {
    "apache": {"server_root", "config_file", "httpd_options", "shutdown_wait",
               "service_name"},
    "mysql": {"config_file", "listen_address", "mysqld_options", "startup_wait",
              "shutdown_wait", "service_name"},
    "postgres-8": {"config_file", "postmaster_user", "postmaster_options", "shutdown_wait",
                   "service_name"},
    "netfs": {"mountpoint", "host", "export", "fstype", "no_unmount", "force_unmount",
              "options"},
    "lvm": {"vg_name", "lv_name", "self_fence", "nfslock"},
    "nfsclient": {"target", "path", "svcname", "fsid", "options", "allow_recover",
                  "service_name", "use_cache"},
    # not in 3.0.12's cluster.rng: the attributes of clusterd's schema define for it
    # (resources/agents/rng.py, from rgmanager's nfsserver.sh meta-data)
    "nfsserver": {"path", "nfspath"},
}
PASSTHROUGH = {"name": "x", "ref": "x", "__independent_subtree": "1",
               "__enforce_timeouts": "1", "__max_failures": "3",
               "__failure_expire_time": "60"}
NETFS = {"mountpoint": "/mnt/data", "host": "nfs1", "export": "/exports/data"}
# an nfsclient as the tree hands it over: path and fsid inherited through its nfsexport
CLIENT = {"name": "bill", "target": "bill.lab", "path": "/mnt/1"}
EXPORTFS_FIXED = {"unlock_on_stop": "false"}

TABLE = [
    # apache: configfile is always written (RHCS default /etc/httpd/conf/httpd.conf)
    ("apache", {"name": "web"},
     Translation("apache", "heartbeat:apache",
                 {"configfile": "/etc/httpd/conf/httpd.conf", "options": "-Dweb"}, {})),
    ("apache", {"name": "web", "server_root": "/srv/httpd", "config_file": "conf/site.conf",
                "httpd_options": "-DSSL", "shutdown_wait": "45", "service_name": "svc"},
     Translation("apache", "heartbeat:apache",
                 {"configfile": "/srv/httpd/conf/site.conf",
                  "options": "-Dweb -d /srv/httpd -DSSL"}, {"stop": 45.0})),
    ("apache", {"server_root": "/srv/httpd"},
     Translation("apache", "heartbeat:apache",
                 {"configfile": "/srv/httpd/conf/httpd.conf", "options": "-d /srv/httpd"},
                 {})),
    ("apache", {"name": "my web", "config_file": "/opt/web/httpd.conf"},
     Translation("apache", "heartbeat:apache", {"configfile": "/opt/web/httpd.conf"}, {})),
    ("apache", {"config_file": "conf/other.conf"},
     Translation("apache", "heartbeat:apache",
                 {"configfile": "/etc/httpd/conf/other.conf"}, {})),
    # mysql
    ("mysql", {"name": "db"}, Translation("mysql", "heartbeat:mysql", {}, {},
                                          _my_cnf("/etc/my.cnf"))),
    ("mysql", {"name": "db", "config_file": "/etc/my-db.cnf", "listen_address": "10.0.0.5",
               "mysqld_options": "--user=dbuser --skip-name-resolve", "startup_wait": "20",
               "shutdown_wait": "40", "service_name": "svc"},
     Translation("mysql", "heartbeat:mysql",
                 {"config": "/etc/my-db.cnf",
                  "additional_parameters":
                      "--bind-address=10.0.0.5 --user=dbuser --skip-name-resolve"},
                 {"start": 20.0, "stop": 40.0}, _my_cnf("/etc/my-db.cnf"))),
    ("mysql", {"mysqld_options": "--skip-networking"},
     Translation("mysql", "heartbeat:mysql",
                 {"additional_parameters": "--skip-networking"}, {}, _my_cnf("/etc/my.cnf"))),
    # postgres-8
    ("postgres-8", {"name": "pg"}, Translation("postgres-8", "heartbeat:pgsql", {}, {})),
    ("postgres-8", {"name": "pg", "config_file": "/pg/data/postgresql.conf",
                    "postmaster_user": "pgadmin",
                    "postmaster_options": "-D /pg/data -p 5433 -c 'work_mem=8MB'",
                    "shutdown_wait": "60", "service_name": "svc"},
     Translation("postgres-8", "heartbeat:pgsql",
                 {"config": "/pg/data/postgresql.conf", "pgdba": "pgadmin",
                  "pgdata": "/pg/data", "start_opt": "-p 5433 -c work_mem=8MB"},
                 {"stop": 60.0})),
    ("postgres-8", {"postmaster_options": "-D/var/lib/pgsql/data"},
     Translation("postgres-8", "heartbeat:pgsql", {"pgdata": "/var/lib/pgsql/data"}, {})),
    # netfs: fstype, options and force_unmount always written with RHCS's defaults
    ("netfs", {"name": "data", **NETFS},
     Translation("netfs", "heartbeat:Filesystem",
                 {"device": "nfs1:/exports/data", "directory": "/mnt/data", "fstype": "nfs",
                  "options": "sync,soft,noac", "force_unmount": "false"}, {})),
    ("netfs", {**NETFS, "fstype": "nfs4", "options": "rw,hard", "force_unmount": "yes",
               "no_unmount": "0"},
     Translation("netfs", "heartbeat:Filesystem",
                 {"device": "nfs1:/exports/data", "directory": "/mnt/data", "fstype": "nfs4",
                  "options": "rw,hard", "force_unmount": "true"}, {})),
    ("netfs", {"mountpoint": "/mnt/share", "host": "smb1", "export": "share",
               "fstype": "cifs", "force_unmount": "0"},
     Translation("netfs", "heartbeat:Filesystem",
                 {"device": "//smb1/share", "directory": "/mnt/share", "fstype": "cifs",
                  "options": "guest", "force_unmount": "false"}, {})),
    # lvm: HA-LVM by tags
    ("lvm", {"name": "vg", "vg_name": "vg_data"},
     Translation("lvm", "heartbeat:LVM-activate",
                 {"vgname": "vg_data", "vg_access_mode": "tagging"}, {})),
    ("lvm", {"vg_name": "vg_data", "lv_name": "lv0", "self_fence": "0", "nfslock": "1"},
     Translation("lvm", "heartbeat:LVM-activate",
                 {"vgname": "vg_data", "lvname": "lv0", "vg_access_mode": "tagging"}, {})),
    # nfsclient: one heartbeat:exportfs per client; the fs's fsid, or one from the path
    ("nfsclient", {**CLIENT, "options": "rw", "fsid": "42"},
     Translation("nfsclient", "heartbeat:exportfs",
                 {"clientspec": "bill.lab", "directory": "/mnt/1", "options": "rw",
                  "fsid": "42", **EXPORTFS_FIXED}, {})),
    ("nfsclient", CLIENT,
     Translation("nfsclient", "heartbeat:exportfs",
                 {"clientspec": "bill.lab", "directory": "/mnt/1",
                  "fsid": rhcs_nfs.derived_fsid("/mnt/1"), **EXPORTFS_FIXED}, {})),
    ("nfsclient", {**CLIENT, "target": "*", "path": "/srv/nfs//",
                   "options": "ro,fsid=7,no_root_squash,sec=krb5:krb5i", "fsid": "42",
                   "allow_recover": "0", "use_cache": "1", "svcname": "s",
                   "service_name": "s"},
     Translation("nfsclient", "heartbeat:exportfs",
                 {"clientspec": "*", "directory": "/srv/nfs",
                  "options": "ro,no_root_squash,sec=krb5:krb5i", "fsid": "7",
                  **EXPORTFS_FIXED}, {})),
    ("nfsclient", {**CLIENT, "target": "@admins", "fsid": "root", "options": " rw,,sync "},
     Translation("nfsclient", "heartbeat:exportfs",
                 {"clientspec": "@admins", "directory": "/mnt/1", "options": "rw,sync",
                  "fsid": "root", **EXPORTFS_FIXED}, {})),
    ("nfsclient", {**CLIENT, "fsid": "6f1ed002-ab59-4c5b-8b8a-5a14e1c7d9e3"},
     Translation("nfsclient", "heartbeat:exportfs",
                 {"clientspec": "bill.lab", "directory": "/mnt/1",
                  "fsid": "6f1ed002-ab59-4c5b-8b8a-5a14e1c7d9e3", **EXPORTFS_FIXED}, {})),
    # nfsserver: its state in PATH/NFSPATH on the service's file system
    ("nfsserver", {"name": "nfs", "path": "/srv/nfs"},
     Translation("nfsserver", "heartbeat:nfsserver",
                 {"nfs_shared_infodir": "/srv/nfs/.clumanager/nfs"}, {})),
    ("nfsserver", {"name": "nfs", "path": "/srv/nfs/", "nfspath": "/state/nfs/"},
     Translation("nfsserver", "heartbeat:nfsserver",
                 {"nfs_shared_infodir": "/srv/nfs/state/nfs"}, {})),
]


@pytest.mark.parametrize(("rtype", "attrs", "expected"), TABLE,
                         ids=[f"{t}-{i}" for i, (t, _a, _e) in enumerate(TABLE)])
def test_translation_table(rtype, attrs, expected):
    assert translate(rtype, attrs, WHERE) == expected


REFUSALS = [
    ("apache", {"shutdown_wait": "thirty"}, "shutdown_wait", "thirty"),
    ("apache", {"shutdown_wait": "0"}, "shutdown_wait", "at least 1"),
    ("apache", {"shutdown_wait": "2.5"}, "shutdown_wait", "whole number"),
    ("apache", {"server_root": "/srv/my httpd"}, "server_root", "blanks"),
    ("apache", {"config_file": "/etc/my httpd.conf"}, "config_file", "blanks"),
    ("apache", {"listen_address": "10.0.0.1"}, "listen_address", "heartbeat:apache"),
    ("mysql", {"startup_wait": "-5"}, "startup_wait", "seconds"),
    ("mysql", {"listen_address": "10.0.0.1 10.0.0.2"}, "listen_address", "one address"),
    ("postgres-8", {"postmaster_options": "-D '/pg"}, "postmaster_options", "quotes"),
    ("postgres-8", {"startup_wait": "10"}, "startup_wait", "cluster.rng"),
    ("netfs", {**NETFS, "no_unmount": "1"}, "no_unmount", "always unmounts"),
    ("netfs", {**NETFS, "no_unmount": "maybe"}, "no_unmount", "not a boolean"),
    ("netfs", {**NETFS, "force_unmount": "sometimes"}, "force_unmount", "not a boolean"),
    ("netfs", {**NETFS, "fstype": "glusterfs"}, "fstype", 'agent="heartbeat:Filesystem"'),
    ("netfs", {**NETFS, "mountpoint": "mnt/data"}, "mountpoint", "absolute"),
    ("netfs", {"host": "nfs1", "export": "/e"}, "mountpoint", "required"),
    ("netfs", {"mountpoint": "/m", "host": "", "export": "/e"}, "host", "required"),
    ("netfs", {**NETFS, "self_fence": "1"}, "self_fence", "not an attribute"),
    ("lvm", {"lv_name": "lv0"}, "vg_name", "required"),
    ("lvm", {"vg_name": "vg", "self_fence": "yes"}, "self_fence", "cannot reboot"),
    ("lvm", {"vg_name": "vg", "self_fence": "2"}, "self_fence", "not a boolean"),
    ("lvm", {"vg_name": "vg", "nfslock": "perhaps"}, "nfslock", "not a boolean"),
    ("nfsclient", {"name": "c", "target": "h"}, "path", "in an <nfsexport> inside the <fs>"),
    ("nfsclient", {**CLIENT, "path": "mnt/1"}, "path", "absolute"),
    ("nfsclient", {**CLIENT, "path": "/mnt/my data"}, "path", "list of directories"),
    ("nfsclient", {"name": "c", "path": "/m"}, "target", "required"),
    ("nfsclient", {**CLIENT, "target": "a b"}, "target", "one <nfsclient> per client"),
    ("nfsclient", {**CLIENT, "options": "rw,crossmnt"}, "options", "crossmnt, which nfs"),
    ("nfsclient", {**CLIENT, "options": "rw, sync"}, "options", "commas only"),
    ("nfsclient", {**CLIENT, "options": "rw,fsid=x1"}, "options", "fsid=x1, which is not"),
    ("nfsclient", {**CLIENT, "fsid": "disk-1"}, "fsid", "from the <fs> or <nfsexport>"),
    ("nfsclient", {**CLIENT, "allow_recover": "sometimes"}, "allow_recover", "not a boolean"),
    ("nfsclient", {**CLIENT, "unlock_on_stop": "1"}, "unlock_on_stop", "not an attribute"),
    ("nfsserver", {"name": "n"}, "path", "inside the <fs> that is to hold its state"),
    ("nfsserver", {"name": "n", "path": "/srv/nfs", "nfspath": "my state"}, "nfspath",
     "blanks"),
    ("nfsserver", {"name": "n", "path": "/srv/nfs", "statdport": "662"}, "statdport",
     "not an attribute"),
]


@pytest.mark.parametrize(("rtype", "attrs", "attr", "why"), REFUSALS,
                         ids=[f"{t}-{a}-{i}" for i, (t, _x, a, _w) in enumerate(REFUSALS)])
def test_refusals_name_the_type_and_the_attribute(rtype, attrs, attr, why):
    result = translate(rtype, attrs, WHERE)
    assert isinstance(result, list) and result, result
    assert all(isinstance(p, Problem) and p.where == WHERE for p in result)
    (problem,) = [p for p in result if attr in p.reason]
    assert problem.reason.startswith(f"<{rtype}> {attr}")
    assert why in problem.reason


def test_a_refusal_says_what_to_write_instead():
    (problem,) = translate("netfs", {**NETFS, "no_unmount": "yes"}, WHERE)
    assert problem.reason.startswith('<netfs> no_unmount="yes": ')
    assert "/etc/fstab" in problem.reason
    (problem,) = translate("lvm", {"vg_name": "vg", "frobnicate": "1"}, WHERE)
    assert 'write <ocf agent="heartbeat:LVM-activate"' in problem.reason
    assert "lv_name, nfslock, self_fence, vg_name" in problem.reason


def test_every_problem_is_reported_at_once():
    result = translate("lvm", {"self_fence": "1", "nfslock": "x", "odd": "1"}, WHERE)
    assert sorted(p.reason.split(":")[0] for p in result) == [
        "<lvm> nfslock=\"x\"", "<lvm> odd", "<lvm> self_fence=\"1\"", "<lvm> vg_name"]


def test_an_unknown_value_in_an_attribute_not_translated_is_not_echoed():
    (problem,) = translate("mysql", {"password": "hunter2"}, WHERE)
    assert "password" in problem.reason and "hunter2" not in problem.reason


@pytest.mark.parametrize("rtype", sorted(RNG_ATTRIBUTES))
def test_tree_attributes_pass_through_untouched(rtype):
    base = {"apache": {}, "mysql": {}, "postgres-8": {}, "netfs": NETFS,
            "lvm": {"vg_name": "vg"}, "nfsclient": {"target": "h", "path": "/m"},
            "nfsserver": {"path": "/m"}}[rtype]
    with_tree = translate(rtype, {**base, **PASSTHROUGH}, WHERE)
    assert isinstance(with_tree, Translation)
    assert not set(with_tree.params) & set(PASSTHROUGH)
    assert not any(k.startswith("__") for k in with_tree.params)
    without_name = {k: v for k, v in PASSTHROUGH.items() if k != "name"}
    assert translate(rtype, {**base, **without_name}, WHERE) == translate(rtype, base, WHERE)


def test_odd_values_of_tree_attributes_are_not_refused_here():
    weird = {"__independent_subtree": "banana", "__max_failures": "many", "ref": ""}
    assert isinstance(translate("mysql", weird, WHERE), Translation)


def test_service_name_is_ignored_whatever_its_value():
    for rtype in ("apache", "mysql", "postgres-8"):
        assert translate(rtype, {"service_name": "anything at all"}, WHERE) == \
            translate(rtype, {}, WHERE)


def test_a_type_not_translated_is_refused():
    """nfsexport is a built-in agent (agents/nfsexport.py), not a translation."""
    (problem,) = translate("nfsexport", {}, WHERE)
    assert "<nfsexport>" in problem.reason and "nfsclient, nfsserver" in problem.reason


def test_attribute_table_covers_every_rhcs_attribute_of_every_type():
    table = attribute_table()
    assert RHCS_TYPES == set(RNG_ATTRIBUTES)
    covered: dict[str, set[str]] = {}
    for rtype, attr, what, agent in table:
        covered.setdefault(rtype, set()).add(attr)
        assert what.split(" ")[0].rstrip(":") in {"param", "start", "stop", "ignored",
                                                  "refused"}, what
        assert agent.startswith("heartbeat:")
    assert covered == RNG_ATTRIBUTES
    assert len(table) == sum(len(a) for a in RNG_ATTRIBUTES.values())   # no duplicates
    assert ("mysql", "startup_wait", "start timeout", "heartbeat:mysql") in table
    assert ("lvm", "vg_name", "param vgname (and vg_access_mode=tagging)",
            "heartbeat:LVM-activate") in table


def test_every_translated_attribute_is_accepted_by_translate():
    """No attribute the table lists is refused as unknown (the table and the code agree)."""
    sample = {"shutdown_wait": "5", "startup_wait": "5", "no_unmount": "0",
              "force_unmount": "0", "self_fence": "0", "nfslock": "0", "fstype": "nfs",
              "mountpoint": "/m", "server_root": "/r", "path": "/m", "fsid": "1",
              "options": "rw", "allow_recover": "1"}
    for rtype, attrs in RNG_ATTRIBUTES.items():
        full = {a: sample.get(a, "v") for a in attrs}
        assert isinstance(translate(rtype, full, WHERE), Translation), rtype


def test_the_docs_carry_the_translation_table():
    """docs/rhcs-migration.md shows the table as generated (python -m
    clusterd.resources.agents.rhcs_types)."""
    docs = Path(__file__).resolve().parents[3] / "docs" / "rhcs-migration.md"
    assert rhcs_types.markdown_table() in docs.read_text()


def test_mysql_option_file_lines_become_the_ocf_parameters_last_one_wins():
    """mysql.sh ran mysqld with --defaults-file only, so the option file chose the data
    directory; heartbeat:mysql's own defaults would override it on the command line."""
    printed = ("--datadir=/var/lib/mysql\n--port=3306\n--pid_file=/run/db/db.pid\n"
               "--datadir=/srv/db/mysql\n--socket=\n--log-error=/srv/db/err.log\n"
               "--user=mysql\n--skip-name-resolve\nnot-an-option=x\n")
    assert option_file_params(_my_cnf("/etc/my.cnf"), printed) == {
        "datadir": "/srv/db/mysql", "pid": "/run/db/db.pid", "log": "/srv/db/err.log",
        "user": "mysql"}
    assert option_file_params(_my_cnf("/etc/my.cnf"), "") == {}


def test_an_export_without_an_fsid_gets_one_from_its_path_the_same_everywhere():
    """heartbeat:exportfs requires an fsid; RHCS set none unless the file did (fs.sh has
    no default). Every client of one directory, on every node, gets the same one."""
    first = translate("nfsclient", {**CLIENT, "target": "a"}, WHERE)
    second = translate("nfsclient", {**CLIENT, "target": "b", "path": "/mnt/1/"}, WHERE)
    other = translate("nfsclient", {**CLIENT, "target": "a", "path": "/mnt/2"}, WHERE)
    assert first.params["fsid"] == second.params["fsid"] == rhcs_nfs.derived_fsid("/mnt/1")
    assert other.params["fsid"] != first.params["fsid"]
    assert rhcs_nfs.derived_fsid("/mnt/1") == "1834605911"      # zlib.crc32: stable
    fsids = {int(rhcs_nfs.derived_fsid(f"/srv/export{i}")) for i in range(2000)}
    assert len(fsids) == 2000 and all(0 < f < 2**31 for f in fsids)


def test_an_fsid_in_the_options_wins_over_the_inherited_one_as_in_nfsclient_sh():
    done = translate("nfsclient", {**CLIENT, "fsid": "42", "options": "fsid=9,rw"}, WHERE)
    assert (done.params["fsid"], done.params["options"]) == ("9", "rw")
    done = translate("nfsclient", {**CLIENT, "options": "fsid=9"}, WHERE)
    assert done.params["fsid"] == "9" and "options" not in done.params


def test_every_option_nfsclient_sh_accepted_is_passed_on():
    words = sorted(o + "x" if o.endswith("=") else o for o in rhcs_nfs.EXPORT_OPTIONS)
    done = translate("nfsclient", {**CLIENT, "options": ",".join(words)}, WHERE)
    assert done.params["options"] == ",".join(words)
