"""The built-in ``samba`` agent against fake smbd/nmbd/testparm (fixtures/samba): the
attribute refusals, the generated smb.conf, start/status/stop with real daemonized
processes named smbd and nmbd, idempotence, SIGKILL escalation, stale pid files that must
not be acted on, and the ways a start fails."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from clusterd.resources.agents import build_agent, status_schedule, validate
from clusterd.resources.agents.base import AgentRc
from clusterd.resources.agents.pidfile import is_program
from clusterd.resources.agents.runner import DEFAULT_PATH, Runner
from clusterd.resources.agents.samba import (
    META,
    SERVICE_IPS,
    SambaAgent,
    owned_options,
    render_config,
)

FIXTURES = Path(__file__).parent / "fixtures" / "samba"
ORIGINAL = ("[global]\n\tworkgroup = LAB\n\tnetbios name = OLDNAME\n\n"
            "[data]\n\tpath = /srv/data\n\tread only = no\n")


@dataclass
class Fakes:
    """Fake Samba programs in ``bin`` (first on the runner's PATH), their log and state
    in ``state``, the agents' run directory, and the operator's smb.conf."""

    bin: Path
    state: Path
    run_dir: Path
    config: Path
    env: dict[str, str]

    def agent(self, testparm: str = "testparm", **attrs: str) -> SambaAgent:
        runner = Runner(path=f"{self.bin}:{DEFAULT_PATH}", env=self.env, kill_grace=0.5,
                        drain_grace=0.2)
        merged = {"name": "files", "config_file": str(self.config), **attrs}
        return SambaAgent(merged, runner=runner, testparm=testparm, run_dir=str(self.run_dir))

    def calls(self) -> list[str]:
        path = self.state / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def launched(self) -> list[str]:
        return [c.split()[0] for c in self.calls() if not c.startswith("testparm")]


@pytest.fixture
def fakes(tmp_path: Path):
    bindir, state = tmp_path / "bin", tmp_path / "state"
    bindir.mkdir()
    state.mkdir()
    for prog in ("smbd", "nmbd"):
        shutil.copy(FIXTURES / "daemon", bindir / prog)
        shutil.copy(shutil.which("sleep"), state / prog)   # the daemon: comm = PROG
    shutil.copy(FIXTURES / "testparm", bindir / "testparm")
    for path in [*bindir.iterdir(), state / "smbd", state / "nmbd"]:
        os.chmod(path, 0o755)
    config = tmp_path / "smb.conf"
    config.write_text(ORIGINAL)
    made = Fakes(bindir, state, tmp_path / "run", config, {"FAKE_SAMBA_DIR": str(state)})
    yield made
    pids = state / "pids"
    for pid in (int(p) for p in pids.read_text().split()) if pids.exists() else ():
        if is_program(pid, "smbd") or is_program(pid, "nmbd"):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def sleeper():
    """An unrelated live process (its pid goes in a stale pid file)."""
    proc = subprocess.Popen(["sleep", "1000"])
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def run(*steps):
    async def scenario():
        return [await step() for step in steps]
    return asyncio.run(scenario())


def daemon_pid(agent: SambaAgent, prog: str) -> int:
    return int(Path(agent.piddir, f"{prog}.pid").read_text())


def alive(pid: int, prog: str) -> bool:
    return is_program(pid, prog)


# ----------------------------------------------------------------------------- validation
W = "service[web]/samba[files]"


@pytest.mark.parametrize("attrs, reasons", [
    ({"name": "files"}, []),
    ({"name": "files", "config_file": "/etc/samba/smb.conf", "smbd_options": "-d 3",
      "nmbd_options": "-l /var/log/samba/-F", "shutdown_wait": "30", "service_name": "web",
      "__independent_subtree": "1", "ref": "files", SERVICE_IPS: "198.18.0.52"}, []),
    ({}, ['<samba> name: required by RHCS <samba> and not set; add name="..."']),
    ({"name": "a/b"}, [('<samba> name="a/b": names the instance\'s directory and NetBIOS name, '
                        "so it must not be . or .. nor hold /, blanks, % or \\; write a plain "
                        "name, e.g. fileserver")]),
    ({"name": "a b"}, [("<samba> name=\"a b\": names the instance's directory and NetBIOS "
                        "name, so it must not be . or .. nor hold /, blanks, % or \\; write a "
                        "plain name, e.g. fileserver")]),
    ({"name": ".."}, [("<samba> name=\"..\": names the instance's directory and NetBIOS name, "
                       "so it must not be . or .. nor hold /, blanks, % or \\; write a plain "
                       "name, e.g. fileserver")]),
    ({"name": "f", "config_file": "smb.conf"},
     [('<samba> config_file="smb.conf": is not an absolute path; write the full path, e.g. '
       "/etc/samba/smb.conf")]),
    ({"name": "f", "smbd_options": "-d '3"},
     ["<samba> smbd_options=\"-d '3\": has unbalanced quotes; fix the quoting"]),
    ({"name": "f", "smbd_options": "-s /etc/other.conf"},
     [('<samba> smbd_options="-s /etc/other.conf": sets -s, an option clusterd must own: '
       "clusterd passes its generated file with -s; remove -s and put the settings in "
       "config_file")]),
    ({"name": "f", "nmbd_options": "--configfile=/x"},
     [('<samba> nmbd_options="--configfile=/x": sets --configfile=/x, an option clusterd '
       "must own: clusterd passes its generated file with -s; remove --configfile=/x and put "
       "the settings in config_file")]),
    ({"name": "f", "smbd_options": "-F"},
     [('<samba> smbd_options="-F": sets -F, an option clusterd must own: it keeps the daemon '
       "in the foreground, where clusterd waits for it to daemonize; remove -F")]),
    ({"name": "f", "nmbd_options": "--interactive"},
     [('<samba> nmbd_options="--interactive": sets --interactive, an option clusterd must own: '
       "it keeps the daemon in the foreground, where clusterd waits for it to daemonize; "
       "remove --interactive")]),
    ({"name": "f", "smbd_options": "-D --log-stdout"},
     [('<samba> smbd_options="-D --log-stdout": sets --log-stdout, an option clusterd '
       "must own: the daemon's output is closed once it daemonizes; remove --log-stdout and "
       "set 'log file' or 'logging' in config_file")]),
    ({"name": "f", "shutdown_wait": "0"},
     [('<samba> shutdown_wait="0": is not a whole number of seconds of at least 1 '
       "(rgmanager's agents compared it as an integer); write the seconds, e.g. 30")]),
    ({"name": "f", "shutdown_wait": "1.5"},
     [('<samba> shutdown_wait="1.5": is not a whole number of seconds of at least 1 '
       "(rgmanager's agents compared it as an integer); write the seconds, e.g. 30")]),
    ({"name": "f", "workgroup": "LAB"},
     [("<samba> workgroup: is not an attribute of RHCS <samba> (cluster.rng allows "
       "config_file, name, nmbd_options, service_name, shutdown_wait, smbd_options); "
       "remove it")]),
])
def test_validate(attrs, reasons):
    assert [p.reason for p in validate("samba", attrs, W)] == reasons


@pytest.mark.parametrize("words, owned", [
    (["-D", "-d", "3"], []),
    (["-i"], ["-i"]), (["-S"], ["-S"]), (["--foreground"], ["--foreground"]),
    (["-DF"], ["-DF"]), (["-Di"], ["-Di"]), (["-sother.conf"], ["-sother.conf"]),
    (["-d3"], []), (["-l", "-Foo"], ["-Foo"]), (["--configfile", "x"], ["--configfile"]),
    (["--option=interfaces=lo"], []),
])
def test_owned_options(words, owned):
    assert owned_options(words) == owned


def test_built_in_and_its_meta_data():
    agent = build_agent("samba", {"name": "files", SERVICE_IPS: "198.18.0.52 fd00::52"})
    assert isinstance(agent, SambaAgent) and agent.rtype == "samba" and agent.name == "files"
    assert agent.ips == ("198.18.0.52", "fd00::52")
    assert agent.instance == "/run/cluster/samba/files"
    [meta] = run(agent.meta_data)
    assert meta.meta is META and meta.result.ok
    assert META.defaults() == {"config_file": "/etc/samba/smb.conf", "smbd_options": "-D",
                               "nmbd_options": "-D"}
    [check] = status_schedule("samba").checks
    assert (check.depth, check.interval, check.timeout) == (0, 60.0, 10.0)


def test_rgmanager_samba_sh_on_the_node_is_not_used(agent_env):
    sh = Path(agent_env.rgmanager_dir) / "samba.sh"
    sh.write_text("#!/bin/sh\nexit 0\n")
    sh.chmod(0o755)
    assert isinstance(build_agent("samba", {"name": "files"}, env=agent_env), SambaAgent)


# ----------------------------------------------------------------------------- smb.conf
def test_render_config_appends_the_instance_global_section():
    text = render_config("[data]\n\tpath = /srv\\", source="/etc/samba/smb.conf",
                         name="files", piddir="/run/cluster/samba/files/pid",
                         ips=("198.18.0.52", "198.18.0.53"))
    assert text == (
        "# Generated by clusterd from /etc/samba/smb.conf for samba:files.\n"
        "# Edits here are overwritten at each start: change /etc/samba/smb.conf instead.\n"
        "[data]\n\tpath = /srv\\\n"
        "\n"
        "# clusterd: samba:files's own settings (this [global] overrides the above)\n"
        "[global]\n"
        "\tpid directory = /run/cluster/samba/files/pid\n"
        "\tnetbios name = files\n"
        "\tinterfaces = 198.18.0.52 198.18.0.53\n"
        "\tbind interfaces only = yes\n")


def test_render_config_without_addresses_binds_nothing():
    text = render_config(ORIGINAL, source="/x", name="files", piddir="/p", ips=())
    assert text.endswith("[global]\n\tpid directory = /p\n\tnetbios name = files\n")
    assert "interfaces" not in text and ORIGINAL in text


# ----------------------------------------------------------------------------- lifecycle
def test_start_status_stop_round_trip(fakes):
    a = fakes.agent(**{SERVICE_IPS: "198.18.0.52"})
    before, stop0, start = run(a.status, a.stop, a.start)
    smbd, nmbd = daemon_pid(a, "smbd"), daemon_pid(a, "nmbd")
    status, stop, after = run(a.status, a.stop, a.status)

    assert [r.rc for r in (before, stop0, start, status, stop, after)] == [
        AgentRc.NOT_RUNNING, AgentRc.OK, AgentRc.OK, AgentRc.OK, AgentRc.OK,
        AgentRc.NOT_RUNNING]
    assert stop0.message == "samba:files: not running (never started here)"
    assert start.message == (f"samba:files: running (smbd pid {smbd}, nmbd pid {nmbd}), "
                             "bound to 198.18.0.52")
    assert status.message == f"samba:files: running (smbd pid {smbd}, nmbd pid {nmbd})"
    assert stop.message == f"samba:files: stopped smbd (pid {smbd}), nmbd (pid {nmbd})"
    conf = Path(a.conf).read_text()
    assert conf.startswith(f"# Generated by clusterd from {fakes.config} for samba:files.\n")
    assert ORIGINAL in conf
    assert conf.endswith(f"[global]\n\tpid directory = {a.piddir}\n\tnetbios name = files\n"
                         "\tinterfaces = 198.18.0.52\n\tbind interfaces only = yes\n")
    assert fakes.calls() == [f"testparm -s {a.conf}",
                             f"testparm -s --parameter-name=disable netbios {a.conf}",
                             f"smbd -D -s {a.conf}", f"nmbd -D -s {a.conf}"]
    assert not alive(smbd, "smbd") and not alive(nmbd, "nmbd")
    assert os.listdir(a.piddir) == []


def test_start_is_idempotent_and_options_follow_d(fakes):
    a = fakes.agent(smbd_options="-d 3 --option='server string=lab'")
    first, second, status = run(a.start, a.start, a.status)
    assert first.ok and second.ok and status.ok
    smbd, nmbd = daemon_pid(a, "smbd"), daemon_pid(a, "nmbd")
    assert second.message == (f"samba:files: running (smbd pid {smbd} (already running), "
                              f"nmbd pid {nmbd} (already running)), on every interface "
                              "(no <ip> in the service)")
    assert fakes.launched() == ["smbd", "nmbd"]
    assert f"smbd -D -d 3 --option=server string=lab -s {a.conf}" in fakes.calls()
    assert "interfaces" not in Path(a.conf).read_text()
    run(a.stop)


def test_a_dead_daemon_fails_status_and_the_next_start_restarts_only_it(fakes):
    a = fakes.agent()
    run(a.start)
    smbd, nmbd = daemon_pid(a, "smbd"), daemon_pid(a, "nmbd")
    os.kill(nmbd, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(nmbd, "nmbd") and time.monotonic() < deadline:
        time.sleep(0.01)
    status, start = run(a.status, a.start)
    assert status.rc is AgentRc.FAILED
    assert status.message == (f"samba:files: nmbd died (nmbd.pid names pid {nmbd}, which is "
                              f"not a running nmbd) while smbd pid {smbd} runs")
    assert start.ok and daemon_pid(a, "smbd") == smbd and daemon_pid(a, "nmbd") != nmbd
    assert fakes.launched() == ["smbd", "nmbd", "nmbd"]
    assert run(a.status)[0].ok
    run(a.stop)


def test_stop_kills_a_daemon_that_ignores_sigterm(fakes):
    fakes.env["FAKE_SAMBA_IGNORE_TERM"] = "smbd"
    a = fakes.agent(shutdown_wait="1")
    run(a.start)
    smbd, nmbd = daemon_pid(a, "smbd"), daemon_pid(a, "nmbd")
    began = time.monotonic()
    [stop] = run(a.stop)
    took = time.monotonic() - began
    assert stop.ok, stop.message
    assert stop.message == (f"samba:files: stopped smbd (pid {smbd}), nmbd (pid {nmbd}); "
                            f"smbd (pid {smbd}) still ran 1s after SIGTERM: killed (SIGKILL)")
    assert 1.0 <= took < 5.0
    assert not alive(smbd, "smbd") and run(a.status)[0].rc is AgentRc.NOT_RUNNING


def test_a_stale_pid_file_naming_another_program_is_never_signalled(fakes, sleeper):
    a = fakes.agent()
    os.makedirs(a.piddir)
    Path(a.piddir, "smbd.pid").write_text(f"{sleeper.pid}\n")
    status, stop = run(a.status, a.stop)
    assert status.rc is AgentRc.FAILED and f"names pid {sleeper.pid}, which is not a " \
                                          "running smbd" in status.message
    assert stop.ok and stop.message == "samba:files: not running"
    assert sleeper.poll() is None and not Path(a.piddir, "smbd.pid").exists()
    Path(a.piddir, "smbd.pid").write_text(f"{sleeper.pid}\n")
    start, stop = run(a.start, a.stop)
    assert start.ok and stop.ok and sleeper.poll() is None
    assert fakes.launched() == ["smbd", "nmbd"]


def test_samba3_pid_file_names_are_found(fakes):
    fakes.env["FAKE_SAMBA_SUFFIX"] = "-smb.conf"
    a = fakes.agent()
    start, status = run(a.start, a.status)
    assert sorted(os.listdir(a.piddir)) == ["nmbd-smb.conf.pid", "smbd-smb.conf.pid"]
    [stop] = run(a.stop)
    assert start.ok and status.ok and stop.ok, (start.message, status.message, stop.message)
    assert os.listdir(a.piddir) == []


def test_disable_netbios_runs_smbd_only(fakes):
    fakes.config.write_text(ORIGINAL.replace("[data]", "\tdisable netbios = yes\n[data]"))
    a = fakes.agent()
    start, status, stop = run(a.start, a.status, a.stop)
    smbd_line = next(c for c in fakes.calls() if c.startswith("smbd"))
    assert start.ok and start.message.endswith("; no nmbd: disable netbios = yes")
    assert status.ok and "nmbd" not in status.message
    assert stop.ok and fakes.launched() == ["smbd"] and smbd_line.startswith("smbd -D -s")


def test_without_testparm_both_daemons_run_unchecked(fakes):
    a = fakes.agent(testparm="/nonexistent/testparm")
    start, stop = run(a.start, a.stop)
    assert start.ok and stop.ok
    assert fakes.calls() == [f"smbd -D -s {a.conf}", f"nmbd -D -s {a.conf}"]


# ----------------------------------------------------------------------------- failures
def test_a_missing_config_file_starts_nothing(fakes):
    a = fakes.agent(config_file=str(fakes.config.parent / "absent.conf"))
    start, status = run(a.start, a.status)
    assert start.rc is AgentRc.CONFIG_ERROR
    assert start.message == (f"samba:files: cannot read config_file {fakes.config.parent}/"
                             "absent.conf (No such file or directory): nothing started; "
                             "install it on every node that may run the service")
    assert fakes.calls() == [] and status.rc is AgentRc.NOT_RUNNING


def test_testparm_refusing_the_configuration_starts_nothing(fakes):
    fakes.env["FAKE_TESTPARM_ERROR"] = "Unknown parameter encountered: \"frobnicate\""
    a = fakes.agent()
    [start] = run(a.start)
    assert start.rc is AgentRc.CONFIG_ERROR
    assert start.message == (
        f"samba:files: testparm -s {a.conf} refused the configuration made from "
        f"{fakes.config} (exit 1: Error loading services.; Load smb config files from "
        f"{a.conf} / Unknown parameter encountered: \"frobnicate\" / Error loading "
        f"services.): nothing started; fix {fakes.config}")
    assert fakes.launched() == []


def test_a_daemon_that_fails_to_start_leaves_nothing_running(fakes):
    fakes.env["FAKE_SAMBA_FAIL"] = "nmbd"
    a = fakes.agent()
    [start] = run(a.start)
    smbd = int((fakes.state / "pids").read_text().split()[0])
    assert start.rc is AgentRc.FAILED
    assert start.message == (f"samba:files: {fakes.bin}/nmbd -D -s {a.conf} failed: exit 1: "
                             f"nmbd: cannot bind (fake) (stopped what had started: smbd "
                             f"(pid {smbd}))")
    assert not alive(smbd, "smbd") and run(a.status)[0].rc is AgentRc.NOT_RUNNING


def test_a_daemon_that_writes_no_pid_file_fails_at_the_deadline(fakes):
    fakes.env["FAKE_SAMBA_NO_PIDFILE"] = "nmbd"
    a = fakes.agent()
    began = time.monotonic()
    [start] = run(lambda: a.start(timeout=1.0))
    assert 1.0 <= time.monotonic() - began < 5.0
    assert start.rc is AgentRc.FAILED
    assert start.message.startswith(
        f"samba:files: nmbd exited 0 but no running nmbd wrote nmbd*.pid in {a.piddir} "
        "before the start deadline: it stopped while starting")
    assert "stopped what had started: smbd (pid" in start.message
    assert run(a.status)[0].rc is AgentRc.NOT_RUNNING


def test_without_smbd_the_start_is_not_installed(fakes):
    runner = Runner(path=str(fakes.state / "nowhere"))
    a = SambaAgent({"name": "files"}, runner=runner, run_dir=str(fakes.run_dir))
    [start] = run(a.start)
    assert start.rc is AgentRc.NOT_INSTALLED
    assert start.message == "samba:files: smbd not found: install the samba package"
