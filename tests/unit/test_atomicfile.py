"""clusterd.atomicfile: the one atomic writer (cluster.conf, state files, fence intents,
the fence meta-data cache, samba's generated smb.conf)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from clusterd import atomicfile
from clusterd.atomicfile import create_temp, write_atomic


def test_it_replaces_the_file_whole_with_its_mode_and_leaves_no_temporary(tmp_path) -> None:
    target = tmp_path / "cluster.conf"
    target.write_bytes(b"old")
    write_atomic(str(target), b"new contents", 0o600, prefix=".cluster.conf.")
    assert target.read_bytes() == b"new contents"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.conf"]


def test_a_failed_write_leaves_the_target_as_it_was_and_no_temporary(tmp_path,
                                                                       monkeypatch) -> None:
    target = tmp_path / "state"
    target.write_bytes(b"before")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomicfile.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output"):
        write_atomic(str(target), b"after")
    assert target.read_bytes() == b"before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_the_temporary_file_is_new_private_and_never_an_existing_link(tmp_path,
                                                                     monkeypatch) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    names = iter([b"\x00" * 6, b"\x00" * 6, b"\x01" * 6])
    monkeypatch.setattr(atomicfile.os, "urandom", lambda n: next(names))
    # the first two draws name a symlink an attacker planted: skipped, never followed
    (tmp_path / f".x-{'00' * 6}").symlink_to(victim)
    fd, path = create_temp(str(tmp_path), ".x-")
    os.close(fd)
    assert path == str(tmp_path / f".x-{'01' * 6}")
    assert stat.S_IMODE(Path(path).stat().st_mode) & 0o077 == 0
    assert victim.read_bytes() == b"keep"


def test_it_says_what_to_do_when_no_name_is_free(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(atomicfile.os, "urandom", lambda n: b"\x07" * n)
    (tmp_path / f".x-{'07' * 6}").write_bytes(b"")
    with pytest.raises(FileExistsError, match=r"remove stale \.x-\* files"):
        create_temp(str(tmp_path), ".x-")
