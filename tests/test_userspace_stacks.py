"""The userspace stacks (cman, pcmk, heartbeat2) on the simulated kernel.

Each stack on each kernel generation (stack glue: profile modern; 2007-era
heartbeat_mode: hbmode2007; ocfs2 1.2: legacy12), through the command line,
with test-double daemons (tests/doubles) installed under the simulated
root's /sbin.  Assertions are on state: which processes run (psutil), the
configfs tree, modules, exit codes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from doubles import install_cman_tool, install_daemons, mode_variable
from runs import CLUSTER, Run, o2cb
from simkernel import CLUSTER_BIN_DIR, SimKernel
from simkernel.engine import Kernel as EngineKernel

from o2cb_init.daemons import Daemon, daemon_settle, daemon_timeout
from o2cb_init.errors import ExitCode
from o2cb_init.system import System

TIMEOUT = "3"  # seconds; generous for a busy machine, where a double starts slowly


@dataclass
class Bed:
    """One simulated machine with a userspace stack configured and its doubles installed."""

    sim: SimKernel
    stack: str
    monkeypatch: pytest.MonkeyPatch
    log: Path
    installed: dict[str, Path] = field(default_factory=dict)

    def o2cb(self, *args: str) -> Run:
        run = o2cb(self.sim, *args)
        self.wait_ready()
        return run

    def wait_ready(self) -> None:
        """Wait until each running double has set up its signal handling.

        o2cb takes a daemon as started once its process runs; a double
        still starting its interpreter would die of SIGTERM without
        logging it, which the tests on stop order would misread.
        """
        for name, path in self.installed.items():
            if not path.read_text().startswith(f"#!{sys.executable}"):
                continue  # not one of the Python doubles
            for pid in self.pids(name):
                wait_for(lambda name=name, pid=pid: (name, pid, "ready") in self.events(), 5)

    def events(self) -> list[tuple[str, int, str]]:
        """(daemon, pid, event) in the order the doubles logged them."""
        if not self.log.exists():
            return []
        rows = [line.split(maxsplit=3) for line in self.log.read_text().splitlines()]
        return [(row[1], int(row[2]), row[3]) for row in rows]

    def daemon(self, name: str) -> Daemon:
        return Daemon(System(root=str(self.sim.root)), name, self.stack)

    def pids(self, name: str) -> list[int]:
        return self.daemon(name).pids()

    def running(self) -> dict[str, list[int]]:
        return {name: self.pids(name) for name in self.installed if self.pids(name)}

    def mode(self, daemon: str, mode: str) -> None:
        self.monkeypatch.setenv(mode_variable(daemon), mode)

    def cluster_dir(self) -> Path:
        configfs = self.sim.configfs()
        assert configfs is not None
        return configfs / "cluster" / CLUSTER

    def kill_all(self) -> None:
        for name in self.installed:
            for process in self.daemon(name).processes():
                process.send_signal(signal.SIGKILL)


@pytest.fixture
def make_bed(
    make_sim: Callable[..., SimKernel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    two_node_cluster_conf: Callable[..., str],
) -> Iterator[Callable[..., Bed]]:
    beds: list[Bed] = []

    def make(stack: str, profile: str = "modern", bootcluster: str = CLUSTER,
             daemons: tuple[str, ...] | None = None, cman_cluster: str | None = CLUSTER,
             callbacks: bool = True, corosync: str | None = CLUSTER) -> Bed:
        """``callbacks``: the kernel's stack glue has dlm_recover_callback_support,
        so pcmk runs on corosync (running ``corosync``, None: installed but down)
        and dlm_controld; without, on ocfs2_controld."""
        sim = make_sim(profile=profile, recover_callbacks=callbacks)
        if daemons is None:
            daemons = {"cman": ("o2cb_controld", "ocfs2_controld"),
                       "pcmk": ("dlm_controld",) if callbacks else ("ocfs2_controld",),
                       }.get(stack, ())
        installed = install_daemons(sim.path("/sbin"), stack, daemons)
        bindir = tmp_path / "bin"
        install_cman_tool(bindir)
        path = [str(bindir), os.environ["PATH"]]
        if stack == "pcmk" and callbacks:
            path.insert(1, str(CLUSTER_BIN_DIR))
            if corosync:
                sim.run_corosync(corosync)
        monkeypatch.setenv("PATH", os.pathsep.join(path))
        if cman_cluster:
            monkeypatch.setenv("CMAN_DOUBLE_CLUSTER", cman_cluster)
        else:
            monkeypatch.delenv("CMAN_DOUBLE_CLUSTER", raising=False)
        monkeypatch.delenv("CMAN_DOUBLE_STATE", raising=False)
        monkeypatch.setenv("O2CB_DAEMON_TIMEOUT", TIMEOUT)
        log = tmp_path / "doubles.log"
        monkeypatch.setenv("O2CB_DOUBLE_LOG", str(log))
        for name in ("o2cb_controld", "ocfs2_controld", "dlm_controld"):
            monkeypatch.delenv(mode_variable(name), raising=False)
        sim.write_config(
            f"O2CB_ENABLED=true\nO2CB_STACK={stack}\nO2CB_BOOTCLUSTER={bootcluster}\n"
            "O2CB_HEARTBEAT_THRESHOLD=21\nO2CB_IDLE_TIMEOUT_MS=20000\n"
            "O2CB_KEEPALIVE_DELAY_MS=3000\nO2CB_RECONNECT_DELAY_MS=2500\n"
        )
        sim.write_cluster_conf(two_node_cluster_conf(hostname="node1", name=CLUSTER))
        bed = Bed(sim, stack, monkeypatch, log, {name: path for name, path in installed.items()})
        beds.append(bed)
        return bed

    yield make
    for bed in beds:
        bed.kill_all()


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# -- cman on a stack-glue kernel ------------------------------------------------


def test_cman_start_brings_up_both_daemons_and_the_cluster(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("cman")
    result = bed.o2cb("start")
    assert result.exit_code == 0, result.text
    lines = result.stdout.splitlines()
    for line in ('Setting cluster stack "cman": OK', "Starting o2cb_controld: OK",
                 'Loading filesystem "ocfs2": OK', "Starting ocfs2_controld: OK"):
        assert line in lines
    assert lines.index("Starting o2cb_controld: OK") < lines.index("Starting ocfs2_controld: OK")
    assert set(bed.running()) == {"o2cb_controld", "ocfs2_controld"}
    assert bed.sim.sysfs()["cluster_stack"] == "cman"
    modules = bed.sim.modules()
    assert "ocfs2_stack_user" in modules and "ocfs2" in modules
    assert "ocfs2_stack_o2cb" not in modules
    tree = bed.sim.tree()
    assert tree[CLUSTER] == "<dir>"
    assert tree[f"{CLUSTER}/idle_timeout_ms"] == "20000"
    assert tree[f"{CLUSTER}/keepalive_delay_ms"] == "3000"
    assert tree[f"{CLUSTER}/heartbeat/dead_threshold"] == "21"

    before = bed.running()
    again = bed.o2cb("start")
    assert again.exit_code == 0, again.text
    assert f"Cluster {CLUSTER} already online" in again.stdout
    assert "Starting" not in again.stdout
    assert bed.running() == before


def test_cman_status_and_online_status(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("cman")
    assert bed.o2cb("load").exit_code == 0
    offline = bed.o2cb("status")
    assert offline.exit_code == ExitCode.NOT_RUNNING
    assert "Checking for control daemon o2cb_controld: not running" in offline.stdout
    assert "Checking for control daemon ocfs2_controld: not running" in offline.stdout
    assert bed.o2cb("online-status").exit_code == 1

    assert bed.o2cb("online").exit_code == 0
    online = bed.o2cb("status")
    assert online.exit_code == 0, online.text
    for name in ("o2cb_controld", "ocfs2_controld"):
        assert (f"Checking for control daemon {name}: running (pid {bed.pids(name)[0]})"
                in online.stdout)
    assert 'Stack plugin "user": Loaded' in online.stdout
    assert 'Driver for "ocfs2": Loaded' in online.stdout
    facts = json.loads(bed.o2cb("status", "--json").stdout)
    assert facts["stack"] == "cman" and facts["online"] is True
    daemons = facts["daemons"]
    assert daemons["ocfs2_controld"]["pids"] == bed.pids("ocfs2_controld")
    assert daemons["ocfs2_controld"]["program"] == str(bed.installed["ocfs2_controld"])
    assert daemons["o2cb_controld"]["running"] is True
    assert bed.o2cb("online-status").stdout.strip() == "online"


def test_cman_stop_stops_ocfs2_controld_first_and_unloads(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("cman")
    assert bed.o2cb("start").exit_code == 0
    result = bed.o2cb("stop")
    assert result.exit_code == 0, result.text
    lines = result.stdout.splitlines()
    assert lines.index("Stopping ocfs2_controld: OK") < lines.index("Stopping o2cb_controld: OK")
    stops = [name for name, _pid, event in bed.events() if event == "stop"]
    assert stops == ["ocfs2_controld", "o2cb_controld"]
    assert bed.running() == {}
    assert bed.sim.tree() == {}
    assert bed.sim.modules() == {}
    assert bed.o2cb("stop").stdout == ""


def test_cman_restart_replaces_the_daemons(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("cman")
    assert bed.o2cb("start").exit_code == 0
    before = bed.running()
    result = bed.o2cb("restart")
    assert result.exit_code == 0, result.text
    after = bed.running()
    assert set(after) == {"o2cb_controld", "ocfs2_controld"}
    assert all(set(after[name]).isdisjoint(before[name]) for name in after)


@pytest.mark.parametrize("verb", ["stop", "offline", "force-offline", "unload"])
def test_cman_refuses_to_stop_while_a_heartbeat_region_is_active(
    make_bed: Callable[..., Bed], verb: str
) -> None:
    bed = make_bed("cman")
    assert bed.o2cb("start").exit_code == 0
    bed.sim.add_heartbeat_region(CLUSTER)
    before = bed.running()
    result = bed.o2cb(verb)
    assert result.exit_code == 1, result.text
    assert "Stopping ocfs2_controld: Failed" in result.stdout
    assert "heartbeat region 0123456789ABCDEF0123456789ABCDEF is still active" in result.stderr
    assert bed.running() == before
    assert "ocfs2_stack_user" in bed.sim.modules()


def test_cman_refuses_to_stop_while_a_volume_is_mounted(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("cman")
    assert bed.o2cb("start").exit_code == 0
    bed.sim.mount_ocfs2_volume(CLUSTER, "/mnt/vol", device="/dev/sdb")
    before = bed.running()
    result = bed.o2cb("stop")
    assert result.exit_code == 1
    assert "still active" in result.stderr or "still mounted" in result.stderr
    assert bed.running() == before
    bed.sim.umount("/mnt/vol")
    assert bed.o2cb("stop").exit_code == 0
    assert bed.running() == {}


def test_unload_refuses_while_a_control_daemon_runs(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("cman", bootcluster="")
    assert bed.o2cb("online", CLUSTER).exit_code == 0
    result = bed.o2cb("unload")
    assert result.exit_code == 1
    assert "Unable to unload modules while o2cb_controld is running" in result.stderr
    assert set(bed.running()) == {"o2cb_controld", "ocfs2_controld"}
    assert "ocfs2_stack_user" in bed.sim.modules()


def test_cman_not_running_fails_before_any_daemon(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("cman", cman_cluster=None)
    result = bed.o2cb("start")
    assert result.exit_code == 1
    assert 'Checking cman cluster "ocfs2": Failed' in result.stdout
    assert "cman is not running" in result.stderr
    assert bed.running() == {}


def test_cman_running_another_cluster_is_refused(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("cman", cman_cluster="other")
    result = bed.o2cb("start")
    assert result.exit_code == 1
    assert 'cman runs cluster "other", not "ocfs2"' in result.stderr
    assert bed.running() == {}
    assert bed.sim.tree() == {}


def test_cman_without_cman_tool_is_not_installed(
    make_bed: Callable[..., Bed], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bed = make_bed("cman")
    (tmp_path / "bin" / "cman_tool").unlink()
    result = bed.o2cb("start")
    assert result.exit_code == ExitCode.NOT_INSTALLED
    assert "cman_tool not found" in result.stderr
    assert bed.running() == {}


@pytest.mark.parametrize("stack", ["cman", "pcmk"])
def test_missing_ocfs2_controld_is_not_installed(
    make_bed: Callable[..., Bed], stack: str
) -> None:
    bed = make_bed(stack, daemons=("o2cb_controld",) if stack == "cman" else (), callbacks=False)
    if stack == "pcmk":
        bed.sim.load("ocfs2_stackglue")  # which says it has no recovery callbacks
    result = bed.o2cb("start")
    assert result.exit_code == ExitCode.NOT_INSTALLED
    assert f"cluster stack {stack} is not supported here: no ocfs2_controld" in result.stderr
    assert bed.running() == {}
    assert bed.sim.tree() == {}


# -- daemons that misbehave -------------------------------------------------------


@pytest.mark.parametrize(
    ("daemon", "mode", "reason"),
    [
        ("o2cb_controld", "fail", "exited with status 1"),
        ("o2cb_controld", "hang", "cluster ocfs2 has not appeared in configfs"),
        ("o2cb_controld", "vanish", "did not start within"),
        ("ocfs2_controld", "fail", "exited with status 1"),
        ("ocfs2_controld", "vanish", "did not start within"),
    ],
)
def test_a_daemon_that_never_starts_fails_and_leaves_nothing_running(
    make_bed: Callable[..., Bed], daemon: str, mode: str, reason: str
) -> None:
    bed = make_bed("cman")
    bed.mode(daemon, mode)
    result = bed.o2cb("start")
    assert result.exit_code == 1, result.text
    assert f"Starting {daemon}: Failed" in result.stdout
    assert f"Unable to start {daemon}" in result.stderr and reason in result.stderr
    assert bed.running() == {}
    assert CLUSTER not in bed.sim.tree()
    assert "ocfs2" not in bed.sim.modules()


def test_self_daemonizing_daemons_start_and_stop(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("cman")
    bed.mode("o2cb_controld", "fork")
    bed.mode("ocfs2_controld", "fork")
    result = bed.o2cb("start")
    assert result.exit_code == 0, result.text
    assert set(bed.running()) == {"o2cb_controld", "ocfs2_controld"}
    assert bed.o2cb("stop").exit_code == 0
    assert bed.running() == {}


def test_a_daemon_that_dies_shows_as_not_running_and_comes_back(
    make_bed: Callable[..., Bed], monkeypatch: pytest.MonkeyPatch
) -> None:
    bed = make_bed("cman")
    bed.mode("ocfs2_controld", "die")
    assert bed.o2cb("start").exit_code == 0
    assert wait_for(lambda: not bed.pids("ocfs2_controld"))
    status = bed.o2cb("status")
    assert status.exit_code == ExitCode.NOT_RUNNING
    assert "Checking for control daemon ocfs2_controld: not running" in status.stdout
    assert bed.o2cb("online-status").stdout.strip() == "offline"

    monkeypatch.delenv(mode_variable("ocfs2_controld"))
    result = bed.o2cb("start")
    assert result.exit_code == 0, result.text
    assert "Starting ocfs2_controld: OK" in result.stdout
    assert "Starting o2cb_controld" not in result.stdout
    assert set(bed.running()) == {"o2cb_controld", "ocfs2_controld"}


def test_offline_after_ocfs2_controld_died_stops_the_rest(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("cman")
    bed.mode("ocfs2_controld", "die")
    assert bed.o2cb("start").exit_code == 0
    assert wait_for(lambda: not bed.pids("ocfs2_controld"))
    result = bed.o2cb("stop")
    assert result.exit_code == 0, result.text
    assert "Stopping o2cb_controld: OK" in result.stdout
    assert bed.running() == {}
    assert bed.sim.modules() == {}


def test_a_daemon_ignoring_sigterm_fails_stop_and_force_offline_kills_it(
    make_bed: Callable[..., Bed]
) -> None:
    bed = make_bed("cman")
    bed.mode("ocfs2_controld", "stubborn")
    assert bed.o2cb("start").exit_code == 0
    stubborn = bed.pids("ocfs2_controld")
    result = bed.o2cb("stop")
    assert result.exit_code == 1
    assert "Stopping ocfs2_controld: Failed" in result.stdout
    assert f"did not stop within {TIMEOUT} s" in result.stderr
    assert bed.pids("ocfs2_controld") == stubborn
    assert bed.pids("o2cb_controld"), "o2cb_controld must outlive ocfs2_controld"

    forced = bed.o2cb("force-offline")
    assert forced.exit_code == 0, forced.text
    assert bed.running() == {}
    assert CLUSTER not in bed.sim.tree()


def test_o2cb_controld_killed_leaves_a_cluster_that_offline_removes(
    make_bed: Callable[..., Bed]
) -> None:
    bed = make_bed("cman")
    bed.mode("o2cb_controld", "stubborn")
    assert bed.o2cb("start").exit_code == 0
    result = bed.o2cb("force-offline")
    assert result.exit_code == 0, result.text
    assert "Removing cluster ocfs2 from configfs: OK" in result.stdout
    assert bed.running() == {}
    assert bed.sim.tree() == {}


def test_dry_run_starts_nothing(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("cman")
    assert bed.o2cb("load").exit_code == 0
    result = bed.o2cb("--dry-run", "online")
    assert result.exit_code == 0, result.text
    assert "Starting o2cb_controld: dry run\n" in result.stdout
    assert f"  would start {bed.installed['o2cb_controld']}\n" in result.stdout
    assert bed.running() == {}
    assert CLUSTER not in bed.sim.tree()


# -- finding daemons --------------------------------------------------------------


def test_a_process_that_only_reads_the_daemon_file_is_never_touched(
    make_bed: Callable[..., Bed]
) -> None:
    bed = make_bed("pcmk", callbacks=False)
    path = bed.installed["ocfs2_controld"]
    reader = subprocess.Popen(["tail", "-f", str(path)], stdout=subprocess.DEVNULL)
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", str(path)]
    )
    try:
        assert bed.pids("ocfs2_controld") == []
        assert "not running" in bed.o2cb("status").stdout
        assert bed.o2cb("stop").exit_code == 0
        assert reader.poll() is None and other.poll() is None
    finally:
        reader.kill()
        other.kill()
        reader.wait()
        other.wait()


def test_lookup_prefers_name_dot_stack_then_sbin_then_path(tmp_path: Path) -> None:
    root = tmp_path / "root"
    system = System(root=str(root))
    daemon = Daemon(system, "ocfs2_controld", "cman")
    assert daemon.locate() is None

    def program(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
        return path

    on_path = program(tmp_path / "bin" / "ocfs2_controld")
    os.environ["PATH"], saved = f"{on_path.parent}{os.pathsep}{os.environ['PATH']}", \
        os.environ["PATH"]
    try:
        assert Daemon(system, "ocfs2_controld", "cman").locate() == str(on_path)
        plain = program(root / "usr/sbin/ocfs2_controld")
        assert Daemon(system, "ocfs2_controld", "cman").locate() == str(plain)
        suffixed_on_path = program(tmp_path / "bin" / "ocfs2_controld.cman")
        assert Daemon(system, "ocfs2_controld", "cman").locate() == str(suffixed_on_path)
        suffixed = program(root / "sbin/ocfs2_controld.cman")
        assert Daemon(system, "ocfs2_controld", "cman").locate() == str(suffixed)
    finally:
        os.environ["PATH"] = saved


def test_daemon_timeouts_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2CB_DAEMON_TIMEOUT", "2.5")
    monkeypatch.setenv("O2CB_DAEMON_SETTLE", "1")
    assert daemon_timeout() == 2.5
    assert daemon_settle() == 1.0
    for bad in ("", "soon", "-1", "0"):
        monkeypatch.setenv("O2CB_DAEMON_TIMEOUT", bad)
        monkeypatch.setenv("O2CB_DAEMON_SETTLE", bad)
        assert daemon_timeout() == 5.0
        assert daemon_settle() == 0.3


def test_a_shell_script_daemon_is_found_and_its_failure_seen(
    make_bed: Callable[..., Bed]
) -> None:
    bed = make_bed("pcmk", callbacks=False)
    bed.installed["ocfs2_controld"].write_text("#!/bin/sh\necho cannot start >&2\nexit 3\n")
    result = bed.o2cb("start")
    assert result.exit_code == 1
    assert "Unable to start ocfs2_controld: ocfs2_controld exited with status 3" in result.stderr
    bed.installed["ocfs2_controld"].write_text("#!/bin/sh\nwhile :; do sleep 0.2; done\n")
    assert bed.o2cb("online").exit_code == 0
    assert len(bed.pids("ocfs2_controld")) == 1
    assert bed.o2cb("stop").exit_code == 0
    assert bed.pids("ocfs2_controld") == []


# -- userdlm domains on the userspace stacks ---------------------------------------


@pytest.mark.parametrize("stack", ["cman", "pcmk"])
def test_a_dlm_holder_keeps_the_daemons_until_force_offline(
    make_bed: Callable[..., Bed], stack: str
) -> None:
    bed = make_bed(stack)
    assert bed.o2cb("start").exit_code == 0
    running = bed.running()
    with bed.sim.hold_dlm("o2cbtest") as holder:
        before = bed.sim.snapshot()
        refused = bed.o2cb("stop")
        assert refused.exit_code == 1
        assert refused.stdout.splitlines() == ["Clean userdlm domains: Failed"]
        assert f"pid {holder.pid}" in refused.stderr
        assert bed.running() == running
        assert bed.sim.snapshot() == before
        forced = bed.o2cb("force-offline")
        assert forced.exit_code == 0, forced.text
        assert forced.stdout.splitlines()[0] == "Clean userdlm domains: OK"
        assert holder.process.wait(timeout=10) is not None
        assert bed.running() == {}
    stop = bed.o2cb("stop")
    assert stop.exit_code == 0, stop.text
    assert bed.sim.modules() == {}


# -- pcmk -----------------------------------------------------------------------


def test_pcmk_with_ocfs2_controld_start_status_stop(make_bed: Callable[..., Bed]) -> None:
    """A kernel without the DLM's recovery callbacks: ocfs2_controld.pcmk, as in 2008."""
    bed = make_bed("pcmk", callbacks=False)
    result = bed.o2cb("start")
    assert result.exit_code == 0, result.text
    assert 'Setting cluster stack "pcmk": OK' in result.stdout
    assert "Starting ocfs2_controld: OK" in result.stdout
    assert "cman" not in result.stdout
    assert bed.sim.sysfs()["cluster_stack"] == "pcmk"
    assert set(bed.running()) == {"ocfs2_controld"}
    assert bed.sim.tree() == {}, "pcmk builds no o2nm cluster"
    status = bed.o2cb("status")
    assert status.exit_code == 0
    assert 'Checking cluster "ocfs2" (pcmk): Online' in status.stdout

    stop = bed.o2cb("stop")
    assert stop.exit_code == 0, stop.text
    assert "Stopping ocfs2_controld: OK" in stop.stdout
    assert bed.running() == {}
    assert bed.sim.modules() == {}


def test_pcmk_refuses_to_stop_while_a_volume_is_mounted(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("pcmk")
    assert bed.o2cb("start").exit_code == 0
    kernel = EngineKernel(bed.sim.root)
    kernel.state["mounts"].append(
        {"device": "/dev/sdb", "given": "/mnt/vol", "relative": "/mnt/vol", "fstype": "ocfs2"}
    )
    kernel.save()
    before = bed.running()
    result = bed.o2cb("stop")
    assert result.exit_code == 1
    assert "OCFS2 volume /dev/sdb is still mounted on /mnt/vol" in result.stderr
    assert bed.running() == before


# -- kernel generations -------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "profile", "words"),
    [
        ("heartbeat2", "modern", ("four-character", "pcmk")),
        ("pcmk", "hbmode2007", ("stack glue",)),
        ("pcmk", "legacy12", ("stack glue", "ocfs2 1.2")),
        ("cman", "legacy12", ("ocfs2 1.2",)),
        ("heartbeat2", "legacy12", ("ocfs2 1.2",)),
    ],
)
def test_unsupported_stack_is_refused_and_leaves_nothing_loaded(
    make_bed: Callable[..., Bed], stack: str, profile: str, words: tuple[str, ...]
) -> None:
    bed = make_bed(stack, profile=profile)
    before = bed.sim.snapshot()
    result = bed.o2cb("start")
    assert result.exit_code == ExitCode.NOT_CONFIGURED, result.text
    assert all(word in result.stderr for word in words), result.stderr
    assert bed.running() == {}
    after = bed.sim.snapshot()
    assert after["modules"] == before["modules"] == []
    assert after["mounts"] == before["mounts"]


def test_pcmk_refusal_names_the_driver_family(make_bed: Callable[..., Bed]) -> None:
    """With a 2007-era node manager loaded the kernel is known to be one: say so."""
    bed = make_bed("pcmk", profile="hbmode2007")
    bed.sim.load("configfs", "ocfs2_nodemanager")
    bed.sim.mount("configfs", "/sys/kernel/config")
    before = bed.sim.snapshot()
    result = bed.o2cb("start")
    assert result.exit_code == ExitCode.NOT_CONFIGURED, result.text
    assert "2007-era" in result.stderr and "ocfs2 1.2" not in result.stderr, result.stderr
    assert bed.sim.snapshot() == before


def test_heartbeat2_on_a_heartbeat_mode_kernel(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("heartbeat2", profile="hbmode2007")
    result = bed.o2cb("start")
    assert result.exit_code == 0, result.text
    assert 'Loading heartbeat driver "ocfs2_user_heartbeat": OK' in result.stdout
    assert 'Setting heartbeat mode "user": OK' in result.stdout
    assert 'Registering O2CB cluster "ocfs2": OK' in result.stdout
    modules = bed.sim.modules()
    assert "ocfs2_user_heartbeat" in modules and "ocfs2_disk_heartbeat" not in modules
    configfs = bed.sim.configfs()
    assert configfs is not None
    assert (configfs / "cluster/heartbeat_mode").read_text().strip() == "user"
    tree = bed.sim.tree()
    assert tree["ocfs2/node/node1/local"] == "1"
    assert tree["ocfs2/idle_timeout_ms"] == "20000"
    status = bed.o2cb("status")
    assert 'Heartbeat driver "ocfs2_user_heartbeat": Loaded' in status.stdout
    assert "Heartbeat method: user" in status.stdout
    assert "Stack glue driver" not in status.stdout

    bed.sim.add_heartbeat_region(CLUSTER)
    refused = bed.o2cb("stop")
    assert refused.exit_code == 1
    assert "heartbeat region still active" in refused.stderr
    assert "ocfs2" in bed.sim.tree()

    kernel = EngineKernel(bed.sim.root)
    kernel.state["held_regions"] = []
    kernel.remove_item_dir("ocfs2/heartbeat/0123456789ABCDEF0123456789ABCDEF")
    kernel.save()
    stop = bed.o2cb("stop")
    assert stop.exit_code == 0, stop.text
    assert bed.sim.tree() == {}
    assert "ocfs2_user_heartbeat" not in bed.sim.modules()


def test_cman_on_a_heartbeat_mode_kernel(make_bed: Callable[..., Bed]) -> None:
    bed = make_bed("cman", profile="hbmode2007")
    result = bed.o2cb("start")
    assert result.exit_code == 0, result.text
    assert 'Loading heartbeat driver "ocfs2_user_heartbeat": OK' in result.stdout
    assert "Setting cluster stack" not in result.stdout
    assert set(bed.running()) == {"o2cb_controld", "ocfs2_controld"}
    assert "ocfs2" in bed.sim.tree()
    stop = bed.o2cb("stop")
    assert stop.exit_code == 0, stop.text
    assert bed.running() == {}
    assert bed.sim.modules() == {}


def test_o2cb_on_a_heartbeat_mode_kernel_uses_disk_heartbeat(
    make_bed: Callable[..., Bed]
) -> None:
    bed = make_bed("o2cb", profile="hbmode2007")
    result = bed.o2cb("start")
    assert result.exit_code == 0, result.text
    assert 'Loading heartbeat driver "ocfs2_disk_heartbeat": OK' in result.stdout
    configfs = bed.sim.configfs()
    assert configfs is not None
    assert (configfs / "cluster/heartbeat_mode").read_text().strip() == "disk"
    assert bed.o2cb("stop").exit_code == 0
    assert "ocfs2_disk_heartbeat" not in bed.sim.modules()



# -- no cluster.conf: cman and pcmk take the layout from their cluster manager -----


@pytest.mark.parametrize("stack", ["cman", "pcmk"])
def test_userspace_stacks_run_without_cluster_conf(make_bed: Callable[..., Bed],
                                                   stack: str) -> None:
    bed = make_bed(stack)
    bed.sim.path("/etc/ocfs2/cluster.conf").unlink()
    start = bed.o2cb("start")
    assert start.exit_code == 0, start.text
    assert bed.sim.sysfs()["cluster_stack"] == stack
    assert bed.running()
    status = bed.o2cb("status")
    assert status.exit_code == 0, status.text
    stop = bed.o2cb("stop")
    assert stop.exit_code == 0, stop.text
    assert bed.running() == {}
    assert bed.sim.modules() == {}


@pytest.mark.parametrize("stack", ["cman", "pcmk"])
def test_userspace_stacks_stop_without_a_valid_config(make_bed: Callable[..., Bed],
                                                      stack: str) -> None:
    """The stack is taken from cluster_stack and the running daemons, not the file."""
    bed = make_bed(stack)
    assert bed.o2cb("start").exit_code == 0
    bed.sim.write_config("this is not a setting\n")
    status = bed.o2cb("status")
    assert status.exit_code in (0, 3), status.text
    daemon = "control daemon o2cb_controld" if stack == "cman" else "dlm_controld"
    assert f"Checking for {daemon}: running" in status.stdout
    stop = bed.o2cb("stop")
    assert stop.exit_code == 0, stop.text
    assert bed.running() == {}
    assert bed.sim.modules() == {}


# -- what Pacemaker's lsb: and systemd: resource classes expect ------------------------


@pytest.mark.parametrize("stack", ["cman", "pcmk"])
def test_start_when_started_and_stop_when_stopped_exit_0(make_bed: Callable[..., Bed],
                                                         stack: str) -> None:
    bed = make_bed(stack, callbacks=False)
    assert bed.o2cb("stop").exit_code == 0
    assert bed.o2cb("start").exit_code == 0
    running = bed.running()
    again = bed.o2cb("start")
    assert again.exit_code == 0, again.text
    assert f"Cluster {CLUSTER} already online" in again.stdout
    assert bed.running() == running
    assert bed.o2cb("stop").exit_code == 0
    stopped = bed.o2cb("stop")
    assert stopped.exit_code == 0, stopped.text
    assert bed.running() == {}
    assert bed.sim.modules() == {}
