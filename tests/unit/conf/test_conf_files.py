"""cluster.conf on disk: the atomic write."""

from __future__ import annotations

import os
import stat

from clusterd.conf.files import write_atomic


def test_write_atomic_replaces_with_0640_and_leaves_no_temp(tmp_path):
    path = tmp_path / "cluster.conf"
    path.write_bytes(b"old")
    write_atomic(str(path), b"new")
    assert path.read_bytes() == b"new"
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (0, 0)
    assert sorted(os.listdir(tmp_path)) == ["cluster.conf"]
