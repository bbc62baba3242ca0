"""The authkey loader refuses missing, short, and group/other-accessible keys; the key
ring (authkey + authkey.next/.old), key generation and the rekey switch (S5)."""

from __future__ import annotations

import os

import pytest
from clusterd.errors import FatalError
from clusterd.wire.auth import (
    DEFAULT_KEY_BYTES,
    MIN_KEY_BYTES,
    activate_next,
    generate_key,
    key_id,
    load_authkey,
    load_keyring,
)

ROOT = os.geteuid() == 0


def _key(tmp_path, data: bytes = b"s" * 256, mode: int = 0o400, name: str = "authkey"):
    path = tmp_path / name
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def test_good_key_loads_and_never_shows_in_repr(tmp_path) -> None:
    key = load_authkey(_key(tmp_path, b"secret!!" * 16), require_root_owner=ROOT)
    assert key.secret == b"secret!!" * 16
    assert "secret" not in repr(key) and "128 bytes" in repr(key)
    assert key.key_id in repr(key) and len(key.key_id) == 12


@pytest.mark.parametrize("mode,word", [(0o440, "0440"), (0o404, "0404"), (0o600 | 0o020, "0620"),
                                       (0o401, "0401")])
def test_group_or_other_access_is_refused(tmp_path, mode: int, word: str) -> None:
    with pytest.raises(FatalError, match=f"mode {word}.*chmod 0400"):
        load_authkey(_key(tmp_path, mode=mode), require_root_owner=ROOT)


def test_missing_key_is_refused_with_a_hint(tmp_path) -> None:
    with pytest.raises(FatalError, match="is missing: create it"):
        load_authkey(str(tmp_path / "nope"))


@pytest.mark.parametrize("size", [0, 32, 64, MIN_KEY_BYTES - 1])
def test_short_key_is_refused_naming_the_file_and_its_size(tmp_path, size: int) -> None:
    path = _key(tmp_path, b"x" * size)
    with pytest.raises(FatalError, match=f"authkey {path} holds {size} bytes, fewer than the "
                                         f"{MIN_KEY_BYTES} required"):
        load_authkey(path, require_root_owner=ROOT)


def test_the_minimum_is_128_bytes_as_corosync() -> None:
    assert (MIN_KEY_BYTES, DEFAULT_KEY_BYTES) == (128, 256)


def test_generated_key_is_random_0400_default_256_and_never_overwritten(tmp_path) -> None:
    path = str(tmp_path / "authkey")
    key = generate_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o400
    assert load_authkey(path, require_root_owner=ROOT).secret == key.secret
    assert len(key.secret) == DEFAULT_KEY_BYTES
    other = generate_key(str(tmp_path / "other"))
    assert other.secret != key.secret and other.key_id != key.key_id
    with pytest.raises(FileExistsError):
        generate_key(path)
    with pytest.raises(ValueError, match="outside 128..4096"):
        generate_key(str(tmp_path / "small"), 64)


def test_keyring_loads_next_and_old_and_skips_a_copy_of_the_active(tmp_path) -> None:
    active = _key(tmp_path, b"a" * 256)
    assert load_keyring(active, require_root_owner=ROOT).accepted == ()
    _key(tmp_path, b"n" * 256, name="authkey.next")
    _key(tmp_path, b"o" * 256, name="authkey.old")
    ring = load_keyring(active, require_root_owner=ROOT)
    assert ring.active.secret == b"a" * 256
    assert [k.secret for k in ring.accepted] == [b"n" * 256, b"o" * 256]
    assert ring.secrets == (b"a" * 256, b"n" * 256, b"o" * 256)
    desc = ring.describe()
    assert desc["active"] == key_id(b"a" * 256)
    assert [k["path"] for k in desc["accepted"]] == [active + ".next", active + ".old"]
    assert "aaaa" not in repr(ring) and "aaaa" not in str(desc)
    (tmp_path / "authkey.old").chmod(0o600)
    os.remove(tmp_path / "authkey.old")
    _key(tmp_path, b"a" * 256, name="authkey.old")
    assert [k.secret for k in load_keyring(active, require_root_owner=ROOT).accepted] == \
        [b"n" * 256]


def test_keyring_refuses_an_unsafe_or_short_next_key(tmp_path) -> None:
    active = _key(tmp_path)
    nxt = _key(tmp_path, b"n" * 100, name="authkey.next")
    with pytest.raises(FatalError, match=f"authkey {nxt} holds 100 bytes"):
        load_keyring(active, require_root_owner=ROOT)
    os.chmod(nxt, 0o600)
    os.remove(nxt)
    _key(tmp_path, b"n" * 256, mode=0o440, name="authkey.next")
    with pytest.raises(FatalError, match="mode 0440"):
        load_keyring(active, require_root_owner=ROOT)


def test_activate_next_moves_the_keys_and_refuses_out_of_order(tmp_path) -> None:
    active = _key(tmp_path, b"a" * 256)
    with pytest.raises(FatalError, match="no .*authkey.next: install the new key"):
        activate_next(active, require_root_owner=ROOT)
    _key(tmp_path, b"n" * 256, name="authkey.next")
    activate_next(active, require_root_owner=ROOT)
    ring = load_keyring(active, require_root_owner=ROOT)
    assert ring.active.secret == b"n" * 256
    assert [k.secret for k in ring.accepted] == [b"a" * 256]
    assert not os.path.exists(active + ".next")
    _key(tmp_path, b"z" * 256, name="authkey.next")
    with pytest.raises(FatalError, match="authkey.old still exists"):
        activate_next(active, require_root_owner=ROOT)
    assert load_authkey(active, require_root_owner=ROOT).secret == b"n" * 256


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
