"""One boolean parser: the collection's copy of clusterd.truth's boolean words
(module_utils/_clusterd/options.py, which must not import clusterd) is the same, and reads
an exported boolean as clusterd does. (The secret-name rule's copy: test_secret_rule.py.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from clusterd import truth

OPTIONS = (Path(__file__).resolve().parents[2] / "collections/ansible_collections/redhat/"
           "cluster/plugins/module_utils/_clusterd/options.py")


def _options():
    # options.py imports its sibling secrets.py through the collection's package name
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(OPTIONS.parents[6]))          # .../collections
        spec = importlib.util.spec_from_file_location("rhc_collection_options", OPTIONS)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def test_the_boolean_words_are_the_same() -> None:
    options = _options()
    assert options.TRUE_WORDS == truth.TRUE_WORDS
    assert options.FALSE_WORDS == truth.FALSE_WORDS


@pytest.mark.parametrize("value", ["1", "0", "yes", "No", " on ", "TRUE", "false", "off",
                                   "2", "y", "", "maybe"])
def test_the_collection_reads_booleans_as_clusterd_does(value: str) -> None:
    expected = truth.bool_or_none(value)
    if expected is None:
        with pytest.raises(ValueError):
            _options()._bool(value)
    else:
        assert _options()._bool(value) is expected
