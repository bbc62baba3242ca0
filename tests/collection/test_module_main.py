"""module_utils/_clusterd/main.py: run_module, the one tail of every module's main(),
with a stand-in for AnsibleModule (the attributes run_module uses; fail_json and
exit_json end the run as on a node). The modules' own main() through it, end to end:
the collection's tests/unit/plugins/modules/test_main.py and test_return_docs.py."""

from __future__ import annotations

import importlib
import json
import typing as t
from pathlib import Path

import pytest

COLLECTIONS = Path(__file__).resolve().parents[2] / "collections"

SECRET = "n0t-in-0utput"
EDIT_REPLY = {"v": 1, "ok": True, "changed": True, "config_version": 4, "source": "daemon",
              "diff": {"before": "", "after": "<cluster/>", "before_header": "b",
                       "after_header": "a"},
              "tree_warnings": ["service:web: an ip resource referenced twice"],
              "pending": None}


class Exit(Exception):
    """exit_json or fail_json was called (the module process would end here)."""

    def __init__(self, failed: bool, result: dict[str, t.Any]) -> None:
        super().__init__(failed, result)
        self.failed = failed
        self.result = result


class StandIn:
    """What run_module uses of an AnsibleModule."""

    def __init__(self, params: dict[str, t.Any], *, check: bool = False, diff: bool = False,
                 reply: dict[str, t.Any] | None = None, installed: bool = True) -> None:
        self.params = params
        self.check_mode = check
        self._diff = diff
        self.no_log_values: set[str] = set()
        self.warnings: list[str] = []
        self.requests: list[dict[str, t.Any]] = []
        self.reply = reply or EDIT_REPLY
        self.installed = installed

    def get_bin_path(self, name: str, required: bool = False,
                     opt_dirs: list[str] | None = None) -> str | None:
        return "/usr/sbin/cluster_admin" if self.installed else None

    def run_command(self, argv: list[str], data: str = "", binary_data: bool = False,
                    check_rc: bool = False) -> tuple[int, str, str]:
        self.requests.append(json.loads(data))
        return 0, json.dumps(self.reply), ""

    def warn(self, warning: str) -> None:
        self.warnings.append(warning)

    def fail_json(self, msg: str, **result: t.Any) -> t.NoReturn:
        raise Exit(True, dict(result, msg=msg))

    def exit_json(self, **result: t.Any) -> t.NoReturn:
        raise Exit(False, result)


@pytest.fixture(scope="module")
def coll() -> t.Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(COLLECTIONS))
        base = "ansible_collections.redhat.cluster.plugins.module_utils._clusterd."
        yield (importlib.import_module(base + "main"), importlib.import_module(base + "admin"))


def finish(coll: t.Any, module: StandIn, **kwargs: t.Any) -> Exit:
    main, admin = coll

    def run(client: t.Any, params: dict[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
        return admin.run_edit(client, "set_service", {"name": params["name"]}, check_mode)

    with pytest.raises(Exit) as info:
        main.run_module(module, kwargs.pop("name", "cluster_service"), kwargs.pop("run", run),
                        **kwargs)
    return info.value


@pytest.mark.parametrize(("check", "diff"), [(False, False), (True, True)])
def test_an_edit_exits_with_its_result_and_warnings(coll: t.Any, check: bool,
                                                    diff: bool) -> None:
    module = StandIn({"name": "web"}, check=check, diff=diff)
    end = finish(coll, module)
    assert not end.failed
    assert module.requests == [{"v": 1, "op": "edit", "edit": "set_service",
                                "args": {"name": "web"}, "check": check}]
    expected = {"changed": True, "config_version": 4, "source": "daemon"}
    if diff:
        expected["diff"] = EDIT_REPLY["diff"]
    assert end.result == expected
    assert module.warnings == ["service:web: an ip resource referenced twice"]


def test_a_refused_request_fails_with_the_error_fields(coll: t.Any) -> None:
    reply = {"v": 1, "ok": False, "error": {"code": "invalid", "message": "bad domain",
                                            "problems": [{"where": "/cluster", "reason": "x"}]}}
    end = finish(coll, StandIn({"name": "web"}, reply=reply))
    assert end.failed
    assert end.result == {"msg": "bad domain", "error_code": "invalid",
                          "problems": [{"where": "/cluster", "reason": "x"}]}


def test_no_cluster_admin_fails_before_any_request(coll: t.Any) -> None:
    module = StandIn({"name": "web"}, installed=False)
    end = finish(coll, module)
    assert end.failed and module.requests == []
    assert end.result == {
        "msg": "clusterd is not installed on this node (cluster_admin not found)",
        "error_code": "not_installed", "problems": []}


def test_a_misplaced_secret_is_refused_first_and_masked(coll: t.Any) -> None:
    module = StandIn({"type": "ocf", "attrs": {"name": "db", "password": SECRET},
                      "secret_attrs": {}})
    end = finish(coll, module, name="cluster_resource",
                 refuse=lambda params: pytest.fail("refuse ran after a misplaced secret"))
    assert end.failed and module.requests == []
    assert end.result == {"msg": "attrs.password looks like a secret: pass it in "
                                 "secret_attrs (no_log) instead"}
    assert module.no_log_values == {SECRET}


def test_refuse_fails_before_any_request(coll: t.Any) -> None:
    module = StandIn({"name": "web"})
    end = finish(coll, module, refuse=lambda params: f"not {params['name']}")
    assert end.failed and module.requests == [] and end.result == {"msg": "not web"}
    assert finish(coll, StandIn({"name": "web"}), refuse=lambda params: None).failed is False


def test_report_sees_the_result_before_the_exit(coll: t.Any) -> None:
    seen = []

    def report(module: StandIn, result: dict[str, t.Any]) -> None:
        seen.append(dict(result))
        module.warn("reported")

    module = StandIn({"name": "web"}, diff=True)
    end = finish(coll, module, report=report)
    assert not end.failed and seen[0]["config_version"] == 4 and "diff" in seen[0]
    assert module.warnings[0] == "reported"


def test_a_result_without_an_edit_is_returned_as_it_is(coll: t.Any) -> None:
    result = {"changed": False, "node": "node2", "before": {"name": "node2"}, "reason": "r"}
    module = StandIn({"name": "node2"})
    end = finish(coll, module, name="node", run=lambda client, params, check: dict(result))
    assert end.result == result and module.warnings == []
