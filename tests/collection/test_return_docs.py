"""Each module's RETURN documentation against what the module returns, and against the
other modules' RETURN.

Why a test and not a doc fragment: ansible-core 2.19 (requirements.txt) merges doc
fragments into DOCUMENTATION only (options, attributes, notes, seealso:
``ansible.utils.plugin_docs.add_fragments``) and ansible-test reads RETURN as one literal
string per module, so the keys every module shares (``error_code`` and ``problems`` from
``AdminError.fail_fields``, ``config_version``, ``source`` and ``diff`` from ``run_edit``)
are written out in each module, and copies drift.

What returns: every module's ``main()`` as on a node (``module_utils/_clusterd/main.py``),
its ``cluster_admin`` answered by clusterd's own ``cluster_admin.handle()`` on a
temporary cluster.conf (file mode) or over a stand-in daemon that answers the control ops
(daemon mode). Each success scenario runs twice: for real in diff mode, and in check mode
without diff; each module also fails twice (clusterd refuses; cluster_admin not installed).

Drift is:
- a key returned that RETURN does not document (at any depth where RETURN lists
  ``contains``), or of another type than documented;
- a key documented that no scenario returns (add the scenario, or drop the key);
- ``returned`` saying ``failure`` for a key a success returns, or not saying it for a key
  only failures return; ``returned: success`` for a key some success does not return; a
  key ``returned: ... in diff mode`` outside diff mode; a key ``returned: ... not check
  mode`` in check mode;
- a sample of another type than documented;
- two modules documenting one top-level key with different types, elements or ``contains``
  (descriptions, samples and ``returned`` may differ: fence_device's ``config_version`` is
  not returned with verify=true, each module names its own error codes).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import typing as t
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args
from clusterd.cli import cluster_admin as ca
from clusterd.conf.refusals import literal_address
from clusterd.errors import ControlError

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "collections"
MODULES_DIR = COLLECTIONS / "ansible_collections/redhat/cluster/plugins/modules"
MODULES = sorted(p.stem for p in MODULES_DIR.glob("*.py") if not p.stem.startswith("_"))

# Keys Ansible documents once for every module (common return values).
COMMON_KEYS = frozenset({"changed", "failed", "msg", "invocation", "warnings", "deprecations",
                         "exception"})
PY_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str, "int": int, "float": (int, float), "bool": bool, "dict": dict, "list": list,
    "raw": object}

FILE, DAEMON = "file", "daemon"

BASE = b"""<cluster name="alpha" config_version="3"><clusternodes>
<clusternode name="node1" nodeid="1"/><clusternode name="node2" nodeid="2"/>
</clusternodes><rm><failoverdomains>
<failoverdomain name="web_nodes" ordered="1" restricted="1">
<failoverdomainnode name="node1" priority="1"/><failoverdomainnode name="node2" priority="2"/>
</failoverdomain></failoverdomains><service name="web" domain="web_nodes"/></rm></cluster>"""

STATUS = {
    "cluster": {"name": "alpha", "id": 4242, "generation": 7, "config_version": 3},
    "quorum": {"quorate": True, "votes": 2, "expected_votes": 2, "quorum": 2},
    "local": {"name": "node1", "nodeid": 1},
    "view": {"epoch": 7, "members": [1, 2], "coordinator": 1},
    "nodes": [{"name": "node1", "nodeid": 1, "state": "online", "local": True,
               "standby": False},
              {"name": "node2", "nodeid": 2, "state": "online", "local": False,
               "standby": False}],
    "services": [{"name": "service:web", "state": "started", "owner": "node1",
                  "last_owner": None, "flags": [], "restarts": 0}],
    "fencing": [],
}
FENCE_PATHS = [{"node": "node1", "ok": True, "method": "ipmi"},
               {"node": "node2", "ok": False, "method": "",
                "error": "method ipmi: fence_ipmilan status: timed out after 25s"}]

# module -> success scenarios (label, module arguments, mode)
SUCCESS: dict[str, list[tuple[str, dict[str, t.Any], str]]] = {
    "cluster_conf": [("set_cluster", {"name": "alpha", "token": 5000}, FILE)],
    "cluster_alert": [("set_alert", {"name": "hook", "program": "/usr/local/sbin/hook",
                                     "events": ["fence"]}, FILE)],
    "failover_domain": [("set_failover_domain", {
        "name": "db_nodes", "members": [{"name": "node2", "priority": 1}]}, FILE)],
    "cluster_resource": [("set_resource", {"type": "ip", "attrs": {"address": "198.18.0.100"}},
                          FILE)],
    "cluster_service": [("set_service", {"name": "db"}, FILE)],
    "fence_device": [("set_node_fence", {"node": "node1", "methods": []}, FILE),
                     ("verify", {"verify": True, "fail_on_missing": False}, DAEMON)],
    "cluster_info": [("from the file", {}, FILE), ("from the daemon", {}, DAEMON)],
    "node": [("standby", {"name": "node2", "state": "standby"}, DAEMON)],
    "relocate": [("relocate", {"name": "web", "member": "node2"}, DAEMON)],
    "service_state": [("disable", {"name": "web", "state": "disabled"}, DAEMON)],
}
# module -> a refusal by clusterd or by the module (label, module arguments, mode)
FAILURE: dict[str, tuple[str, dict[str, t.Any], str]] = {
    "cluster_conf": ("NUL in the name", {"name": "al\x00pha"}, FILE),
    "cluster_alert": ("a shell command line", {"name": "hook", "program": "/bin/sh"}, FILE),
    "failover_domain": ("unknown member", {"name": "db_nodes", "members": [{"name": "node9"}]},
                        FILE),
    "cluster_resource": ("NUL in an attribute", {"type": "ip",
                                                 "attrs": {"address": "198.18.0.1\x00"}}, FILE),
    "cluster_service": ("unknown domain", {"name": "db", "domain": "nowhere"}, FILE),
    "fence_device": ("no working fence path", {"verify": True}, DAEMON),
    "cluster_info": ("no cluster.conf", {}, "missing file"),
    "node": ("unknown node", {"name": "node9", "state": "standby"}, DAEMON),
    "relocate": ("unknown service", {"name": "db", "member": "node2"}, DAEMON),
    "service_state": ("unknown service", {"name": "db", "state": "disabled"}, DAEMON),
}


class Daemon:
    """The running clusterd as cluster_admin's control client sees it."""

    def __init__(self, model: t.Any) -> None:
        self.conf = model.parse(BASE)

    def call(self, op: str, args: dict[str, t.Any] | None = None) -> t.Any:
        args = args or {}
        if op == "conf.get":
            return {"config_version": self.conf.version,
                    "conf": self.conf.canonical_bytes().decode()}
        if op == "status":
            return json.loads(json.dumps(STATUS))
        if op.startswith("svc."):
            return {"code": 0, "message": "Success", "service": args["service"],
                    "state": "started", "owner": args.get("member") or "node1"}
        if op.startswith("node."):
            return {"code": 0, "message": "Success", "node": args["node"]}
        if op == "fence.verify":
            return {"nodes": [dict(p) for p in FENCE_PATHS]}
        raise ControlError("unknown_op", op)


class Run(t.NamedTuple):
    """One run of a module's main(): its output and how it ran."""

    label: str
    output: dict[str, t.Any]
    failed: bool
    check: bool
    diff: bool


@pytest.fixture(scope="module")
def modules() -> t.Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(COLLECTIONS))
        yield {name: importlib.import_module(
            f"ansible_collections.redhat.cluster.plugins.modules.{name}") for name in MODULES}


@pytest.fixture(scope="module")
def model() -> t.Any:
    return ca._default_model()


def run_main(module: t.Any, args: dict[str, t.Any], mode: str, tmp: Path, model: t.Any,
             *, check: bool = False, diff: bool = False, installed: bool = True
             ) -> dict[str, t.Any]:
    """The JSON a module prints on a node, cluster_admin answered by clusterd's handle()."""
    conf_path = tmp / f"{len(list(tmp.iterdir()))}-cluster.conf"
    if mode == FILE:
        conf_path.write_bytes(BASE)
    daemon = Daemon(model) if mode == DAEMON else None
    environ = {} if mode == DAEMON else {ca.CONF_PATH_ENV: str(conf_path)}

    def run_command(self: t.Any, argv: list[str], data: str | None = None,
                    binary_data: bool = False, check_rc: bool = False) -> tuple[int, str, str]:
        reply = ca.handle(json.loads(data or "null"), model=model, client=daemon,
                          environ=environ, resolve=literal_address)
        return 0, json.dumps(reply), ""

    def get_bin_path(self: t.Any, name: str, required: bool = False,
                     opt_dirs: list[str] | None = None) -> str | None:
        return "/usr/sbin/cluster_admin" if installed else None

    full = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    with pytest.MonkeyPatch.context() as mp, patch_module_args(full):
        # warnings are process-global in ansible-core: each run shows only its own
        mp.setattr(ansible_warnings, "_global_warnings", {})
        mp.setattr(ansible_warnings, "_global_deprecations", {})
        mp.setattr(AnsibleModule, "get_bin_path", get_bin_path)
        mp.setattr(AnsibleModule, "run_command", run_command)
        return _capture_exit(module.main)


def _capture_exit(main: t.Callable[[], None]) -> dict[str, t.Any]:
    """Run main(), which prints its result as JSON and exits, and return that result."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        main()
    return json.loads(buf.getvalue())


@pytest.fixture(scope="module")
def runs(modules: t.Any, model: t.Any, tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, list[Run]]:
    """Every scenario of every module, run once."""
    found: dict[str, list[Run]] = {}
    for name in MODULES:
        tmp = tmp_path_factory.mktemp(name)
        module = modules[name]
        done = found[name] = []
        for label, args, mode in SUCCESS[name]:
            for check, diff in ((False, True), (True, False)):
                out = run_main(module, args, mode, tmp, model, check=check, diff=diff)
                done.append(Run(f"{label} (check={check}, diff={diff})", out, False, check,
                                diff))
        label, args, mode = FAILURE[name]
        done.append(Run(label, run_main(module, args, mode, tmp, model, diff=True), True,
                        False, True))
        label, args, mode = SUCCESS[name][0]
        done.append(Run("cluster_admin not installed",
                        run_main(module, args, mode, tmp, model, installed=False), True,
                        False, False))
    return found


def returns_of(modules: t.Any, name: str) -> dict[str, t.Any]:
    return yaml.safe_load(modules[name].RETURN) or {}


def type_problems(where: str, value: t.Any, doc: t.Mapping[str, t.Any]) -> list[str]:
    """What in ``value`` RETURN's ``doc`` does not describe (undocumented keys, types)."""
    if value is None:
        return []
    kind = doc.get("type", "str")
    if isinstance(value, bool) and kind in ("int", "float") or not isinstance(
            value, PY_TYPES[kind]):
        return [f"{where} is {type(value).__name__}, documented as {kind}"]
    contains = doc.get("contains")
    if not contains:
        return []
    items = [value] if kind == "dict" else list(value) if doc.get("elements") == "dict" else []
    problems = []
    for item in items:
        for key, sub in item.items():
            if key not in contains:
                problems.append(f"{where}.{key} is returned but not documented")
            else:
                problems += type_problems(f"{where}.{key}", sub, contains[key])
    return problems


def paths(value: t.Any, doc: t.Mapping[str, t.Any], prefix: str) -> set[str]:
    """The documented paths ``value`` holds (``cluster_info.export.services``)."""
    found = {prefix}
    contains = doc.get("contains") or {}
    items = ([value] if isinstance(value, dict) else
             value if isinstance(value, list) and doc.get("elements") == "dict" else [])
    for item in items:
        for key, sub in item.items():
            if key in contains:
                found |= paths(sub, contains[key], f"{prefix}.{key}")
    return found


def doc_paths(docs: t.Mapping[str, t.Any], prefix: str = "") -> set[str]:
    found = set()
    for key, doc in docs.items():
        here = f"{prefix}.{key}" if prefix else key
        found.add(here)
        found |= doc_paths(doc.get("contains") or {}, here)
    return found


@pytest.mark.parametrize("name", MODULES)
def test_every_scenario_ran_as_meant(name: str, runs: dict[str, list[Run]]) -> None:
    """The scenarios reach the paths this test is about (else it would check nothing)."""
    for run in runs[name]:
        assert bool(run.output.get("failed")) == run.failed, (run.label, run.output)
    failures = [r.output for r in runs[name] if r.failed]
    assert failures[-1]["error_code"] == "not_installed"


@pytest.mark.parametrize("name", MODULES)
def test_what_a_module_returns_is_documented(name: str, modules: t.Any,
                                             runs: dict[str, list[Run]]) -> None:
    docs = returns_of(modules, name)
    problems = []
    for run in runs[name]:
        for key, value in run.output.items():
            if key in COMMON_KEYS:
                continue
            if key not in docs:
                problems.append(f"{run.label}: {key} is returned but not documented")
            else:
                problems += [f"{run.label}: {p}" for p in type_problems(key, value, docs[key])]
    assert not sorted(set(problems)), "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("name", MODULES)
def test_what_a_module_documents_is_returned(name: str, modules: t.Any,
                                             runs: dict[str, list[Run]]) -> None:
    docs = returns_of(modules, name)
    seen: set[str] = set()
    for run in runs[name]:
        for key, value in run.output.items():
            if key in docs:
                seen |= paths(value, docs[key], key)
    never = sorted(doc_paths(docs) - seen)
    assert not never, f"documented in RETURN but returned by no scenario: {never}"


@pytest.mark.parametrize("name", MODULES)
def test_returned_says_when(name: str, modules: t.Any, runs: dict[str, list[Run]]) -> None:
    docs = returns_of(modules, name)
    problems = []
    for key, doc in docs.items():
        returned = str(doc.get("returned", ""))
        having = [r for r in runs[name] if key in r.output]
        on_success = [r for r in having if not r.failed]
        if returned.strip() == "failure" and on_success:
            problems.append(f"{key}: returned: failure, but {on_success[0].label} returns it")
        if returned.strip() == "success":
            problems += [f"{key}: returned: success, but {r.label} does not return it"
                         for r in runs[name] if not r.failed and key not in r.output]
        if having and not on_success and returned.strip() != "failure":
            problems.append(f"{key}: only failures return it, but returned: {returned}")
        if "diff mode" in returned:
            problems += [f"{key}: returned in diff mode, but {r.label} returns it"
                         for r in having if not r.diff]
        if "not check mode" in returned:
            problems += [f"{key}: returned not in check mode, but {r.label} returns it"
                         for r in having if r.check]
    assert not problems, "\n".join(problems)


def sample_problems(where: str, doc: t.Mapping[str, t.Any]) -> list[str]:
    problems = []
    if "sample" in doc:
        kind = doc.get("type", "str")
        sample = doc["sample"]
        if kind != "list" and isinstance(sample, list) and doc.get("elements") is None:
            sample = sample[0] if sample else None  # several samples of a scalar
        problems += [f"sample of {p}" for p in type_problems(where, sample, {"type": kind})]
    for key, sub in (doc.get("contains") or {}).items():
        problems += sample_problems(f"{where}.{key}", sub)
    return problems


@pytest.mark.parametrize("name", MODULES)
def test_samples_have_the_documented_type(name: str, modules: t.Any) -> None:
    problems = [p for key, doc in returns_of(modules, name).items()
                for p in sample_problems(key, doc)]
    assert not problems, "\n".join(problems)


def shape(doc: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """What two modules must agree on about one key: type, elements, contains."""
    return {"type": doc.get("type", "str"), "elements": doc.get("elements"),
            "contains": {k: shape(v) for k, v in (doc.get("contains") or {}).items()}}


def test_modules_document_shared_keys_alike(modules: t.Any) -> None:
    by_key: dict[str, dict[str, list[str]]] = {}
    for name in MODULES:
        for key, doc in returns_of(modules, name).items():
            by_key.setdefault(key, {}).setdefault(json.dumps(shape(doc), sort_keys=True),
                                                  []).append(name)
    shared = {key: variants for key, variants in by_key.items()
              if sum(len(v) for v in variants.values()) > 1}
    # the keys every module returns through shared code are documented everywhere
    assert {"error_code", "problems"} <= set(shared)
    differ = {key: variants for key, variants in shared.items() if len(variants) > 1}
    assert not differ, "\n".join(f"{key}: " + "; ".join(
        f"{', '.join(names)}: {json.loads(s)}" for s, names in variants.items())
        for key, variants in differ.items())


def test_every_module_documents_the_failure_fields(modules: t.Any) -> None:
    """error_code and problems come from AdminError.fail_fields() in every module."""
    missing = [f"{name}: {key}" for name in MODULES for key in ("error_code", "problems")
               if key not in returns_of(modules, name)]
    assert not missing, missing
