"""The systemd unit shipped in the package: notify readiness, reload by SIGHUP, and a
KillMode that leaves clusterd's services running across a daemon restart (T11/T23)."""

from __future__ import annotations

from importlib.resources import files


def unit() -> dict[str, list[str]]:
    text = (files("clusterd") / "data" / "clusterd.service").read_text()
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_unit_settings():
    u = unit()
    assert u["Type"] == ["notify"] and u["NotifyAccess"] == ["main"]
    assert u["KillMode"] == ["process"] and u["KillSignal"] == ["SIGTERM"]
    assert u["Restart"] == ["on-failure"]
    assert u["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert u["ExecStart"][0].split()[1] == "--foreground"
    assert u["RuntimeDirectory"] == ["cluster"] and u["RuntimeDirectoryMode"] == ["0750"]
