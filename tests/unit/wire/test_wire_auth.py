"""The authkey loader refuses missing, short, and group/other-accessible keys."""

from __future__ import annotations

import os

import pytest
from clusterd.errors import FatalError
from clusterd.wire.auth import MIN_KEY_BYTES, load_authkey

ROOT = os.geteuid() == 0


def _key(tmp_path, data: bytes = b"s" * 64, mode: int = 0o400):
    path = tmp_path / "authkey"
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def test_good_key_loads_and_never_shows_in_repr(tmp_path) -> None:
    key = load_authkey(_key(tmp_path, b"secret!" * 10), require_root_owner=ROOT)
    assert key.secret == b"secret!" * 10
    assert "secret" not in repr(key) and "70 bytes" in repr(key)


@pytest.mark.parametrize("mode,word", [(0o440, "0440"), (0o404, "0404"), (0o600 | 0o020, "0620"),
                                       (0o401, "0401")])
def test_group_or_other_access_is_refused(tmp_path, mode: int, word: str) -> None:
    with pytest.raises(FatalError, match=f"mode {word}.*chmod 0400"):
        load_authkey(_key(tmp_path, mode=mode), require_root_owner=ROOT)


def test_missing_key_is_refused_with_a_hint(tmp_path) -> None:
    with pytest.raises(FatalError, match="is missing: create it"):
        load_authkey(str(tmp_path / "nope"))


def test_short_key_is_refused(tmp_path) -> None:
    with pytest.raises(FatalError, match=f"fewer than the {MIN_KEY_BYTES} required"):
        load_authkey(_key(tmp_path, b"x" * (MIN_KEY_BYTES - 1)), require_root_owner=ROOT)


@pytest.mark.skipif(not ROOT, reason="needs root to chown")
def test_key_not_owned_by_root_is_refused(tmp_path) -> None:
    path = _key(tmp_path)
    os.chown(path, 65534, 65534)
    with pytest.raises(FatalError, match="owned by uid 65534, not root"):
        load_authkey(path)


def test_symlink_and_directory_are_refused(tmp_path) -> None:
    target = _key(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(FatalError, match="cannot be opened"):
        load_authkey(str(link), require_root_owner=ROOT)
    with pytest.raises(FatalError):
        load_authkey(str(tmp_path), require_root_owner=ROOT)
