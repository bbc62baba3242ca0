"""Safe parsing: size limit, malformed XML with line/column, no DTD/entities/network."""

from __future__ import annotations

import pytest
from clusterd.conf import MAX_BYTES, load, parse, validate_bytes
from clusterd.errors import ConfigError
from confbuild import small_cluster, to_bytes


def problems(data: bytes) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse(data)
    return [str(p) for p in exc.value.problems]


def test_oversized_input_is_refused_with_the_limit_named():
    data = to_bytes(small_cluster()) + b" " * MAX_BYTES
    [msg] = problems(data)
    assert "over the 1048576-byte limit (1 MiB)" in msg


def test_oversized_file_is_not_read_whole(tmp_path):
    path = tmp_path / "cluster.conf"
    path.write_bytes(b"<cluster>" + b" " * (3 * MAX_BYTES))
    with pytest.raises(ConfigError, match="1 MiB"):
        load(path)


@pytest.mark.parametrize("data, where", [
    (b'<cluster name="a"', "line 1, column 18"),
    ((b'<?xml version="1.0"?>\n<cluster name="a" config_version="1">\n  <clusternodes>\n'
     b'</cluster>\n'), "line 4"),
    (b"", "line 1"),
    (b"\x00\xff\xfe garbage", "line 1"),
])
def test_malformed_xml_names_line_and_column(data, where):
    [msg] = problems(data)
    assert msg.startswith(where)
    assert "not well-formed XML" in msg and "fix the XML syntax" in msg


def test_external_entities_are_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    data = (f'<?xml version="1.0"?><!DOCTYPE cluster [<!ENTITY x SYSTEM "file://{secret}">]>'
            '<cluster name="a" config_version="1"><clusternodes>'
            '<clusternode name="&x;" nodeid="1"/></clusternodes></cluster>').encode()
    msgs = problems(data)
    assert msgs == [("/: a DOCTYPE declaration is not allowed in cluster.conf (no DTDs or "
                    "entities): remove it")]
    assert "TOPSECRET" not in " ".join(msgs)


def test_entity_expansion_bomb_is_refused():
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    data = (f'<!DOCTYPE cluster [<!ENTITY l0 "lol">{lol}]><cluster name="&l9;" '
            'config_version="1"/>').encode()
    assert "DOCTYPE" in problems(data)[0]


def test_undefined_entity_is_a_syntax_error():
    msgs = problems(b'<cluster name="&nope;" config_version="1"/>')
    assert "not well-formed XML" in msgs[0]


def test_network_dtd_is_not_fetched():
    data = (b'<!DOCTYPE cluster SYSTEM "http://198.18.0.1/cluster.dtd">'
            b'<cluster name="a" config_version="1"/>')
    assert "DOCTYPE" in problems(data)[0]


def test_wrong_root_is_one_clear_problem():
    assert problems(b"<clusters/>") == [
        "/clusters: the root element must be <cluster>, not <clusters>"]


def test_validate_bytes_returns_problems_instead_of_raising():
    assert validate_bytes(to_bytes(small_cluster())) == ()
    [p] = validate_bytes(b"<cluster")
    assert p.where.startswith("line 1")


def test_source_is_carried_into_the_error():
    with pytest.raises(ConfigError) as exc:
        parse(b"<cluster", source="/etc/cluster/cluster.conf")
    assert exc.value.source == "/etc/cluster/cluster.conf"
    assert str(exc.value).startswith("/etc/cluster/cluster.conf is invalid: line 1")


def test_non_bytes_input_is_a_programming_error():
    with pytest.raises(TypeError, match="must be bytes"):
        parse("<cluster/>")  # type: ignore[arg-type]


def test_encodings_are_honoured():
    text = small_cluster()
    data = to_bytes(text).decode().replace('name="alpha"', 'name="alpha"')
    latin = ('<?xml version="1.0" encoding="ISO-8859-1"?>' + data).encode("latin-1")
    assert parse(latin).name == "alpha"
