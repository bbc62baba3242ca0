"""More nodes or services than clusterd is tested with (issue 18, bad input): accepted,
with a warning that names the tested limit (``conf/limits.py``)."""

from __future__ import annotations

import json
import logging

from clusterd.cli import ccs_config_validate
from clusterd.conf import parse
from clusterd.conf.limits import TESTED_NODES, TESTED_SERVICES, scale_notes
from clusterd.conf.parse import parse_xml
from clusterd.conf.validate import scale_warnings


def conf(nodes: int, services: int) -> bytes:
    members = "".join(f'<clusternode name="10.1.{i // 250}.{i % 250 + 1}" nodeid="{i + 1}"/>'
                      for i in range(nodes))
    svcs = "".join(f'<service name="s{i}" autostart="0"/>' for i in range(services))
    return (f'<?xml version="1.0"?><cluster name="big" config_version="1"><clusternodes>'
            f"{members}</clusternodes><rm>{svcs}</rm></cluster>").encode()


def test_the_limits_are_the_ones_issue_18_names() -> None:
    assert (TESTED_NODES, TESTED_SERVICES) == (300, 1000)
    assert scale_notes(TESTED_NODES, TESTED_SERVICES) == []


def test_within_the_tested_limits_there_is_no_warning() -> None:
    assert scale_warnings(parse_xml(conf(3, TESTED_SERVICES))) == ()


def test_more_than_the_tested_limits_validates_with_warnings_naming_them(tmp_path, capsys):
    path = tmp_path / "cluster.conf"
    path.write_bytes(conf(TESTED_NODES + 1, TESTED_SERVICES + 1))
    assert ccs_config_validate.main(["-f", str(path), "--skip-fence-agents"],
                                    resolve=lambda name: None) == 0
    out, err = capsys.readouterr()
    assert out == "Configuration validates\n"
    assert (f"{path}: warning: /cluster/clusternodes: 301 nodes: more than the 300 nodes "
            "clusterd is tested with; accepted") in err
    assert (f"{path}: warning: /cluster/rm: 1001 services: more than the 1000 services "
            "clusterd is tested with; accepted") in err
    assert ccs_config_validate.main(["-f", str(path), "--skip-fence-agents", "--format",
                                     "json"], resolve=lambda name: None) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] and {w["where"] for w in doc["warnings"]} == {
        "/cluster/clusternodes", "/cluster/rm"}


def test_the_daemon_logs_the_warning_when_it_loads_such_a_config(caplog) -> None:
    from clusterd.node.services_glue import ServicesGlue
    big = parse(conf(3, TESTED_SERVICES + 5))
    glue = ServicesGlue.__new__(ServicesGlue)
    glue.name = "n1"
    caplog.set_level(logging.WARNING)

    class Stop(Exception):
        pass

    def stop(_conf):
        raise Stop
    glue.core = type("Core", (), {"load": staticmethod(stop)})()
    try:
        glue.on_conf(big)
    except Stop:
        pass
    assert any("1005 services: more than the 1000 services clusterd is tested with"
               in r.getMessage() for r in caplog.records)
