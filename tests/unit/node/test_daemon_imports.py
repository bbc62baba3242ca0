"""What an idle daemon keeps in memory: modules it needs only for a mistake, a diff or a
TLS connection are not imported by starting it and loading a valid cluster.conf (issue
18 item 4: every module is RSS in every daemon of the cluster, for its whole life)."""

from __future__ import annotations

import json
import subprocess
import sys

# what each would cost (RSS measured on top of asyncio and logging, Python 3.11)
NOT_AT_REST = {
    "ssl": "about 1.3 MB with libssl: the daemon speaks no TLS",
    "difflib": "0.2 MB: only for a 'did you mean' or a config diff",
    "uuid": "0.2 MB with platform: the schema wrapper name is random bytes",
    "zipfile": "0.5 MB with importlib.resources: the schema is read beside its module",
    "importlib.resources": "see zipfile",
    "tempfile": "0.8 MB with random, shutil, bz2 and lzma: clusterd.atomicfile creates its "
                "temporary files itself",
    "xml.etree.ElementTree": "0.5 MB: fence agents' meta-data is read with lxml, as the "
                             "rest",
    "datetime": "0.4 MB: an alert's timestamp is formatted with time.strftime",
    "shutil": "0.3 MB with bz2 and lzma: argparse's help formatter is given the terminal "
              "width (cli/clusterd.py _Parser)",
}

SCRIPT = r"""
import json, sys
from clusterd.cli.clusterd import _parser, _without_tls
_without_tls()
_parser().parse_args(["--foreground", "--config", sys.argv[1]])
import clusterd.node.daemon, clusterd.node.wiring
from clusterd.conf import parse
parse(open(sys.argv[1], "rb").read())
print(json.dumps(sorted(m for m, v in sys.modules.items() if v is not None)))
"""

CONF = b"""<?xml version="1.0"?>
<cluster name="c" config_version="1">
  <clusternodes>
    <clusternode name="n1" nodeid="1"/><clusternode name="n2" nodeid="2"/>
    <clusternode name="n3" nodeid="3"/>
  </clusternodes>
  <rm><service name="web" autostart="1"><ip address="198.18.0.200/24"/></service></rm>
</cluster>
"""


def test_an_idle_daemon_does_not_import_what_it_needs_only_for_mistakes(tmp_path) -> None:
    conf = tmp_path / "cluster.conf"
    conf.write_bytes(CONF)
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(conf)], capture_output=True,
                         text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "clusterd.conf.rng" in loaded and "lxml.etree" in loaded  # it did validate
    found = {m: why for m, why in NOT_AT_REST.items() if m in loaded}
    assert not found, f"imported by starting the daemon and loading a config: {found}"
