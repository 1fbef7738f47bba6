"""Lean start-up: what a verb imports, how often it parses cluster.conf, and
that start never waits for o2hbmonitor.

The interpreter's start-up is most of a verb's time, so `status` on the
classic stack, run at every boot and by monitoring, must not import what it
never uses.  These tests pin that, so that it does not grow back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runs import CLUSTER, CONFIG, o2cb
from simkernel import SimKernel

import o2cb_init
from o2cb_init import clusterconf, daemons, stacks
from o2cb_init.clusterconf import parse

# Nothing `status` or `online-status` on the classic stack needs.  A plain
# command line is read without click (entry.py), records without dataclasses
# (records.py), and typing is imported only by mypy.
NEVER_FOR_STATUS = (
    "click", "psutil", "subprocess", "json", "tempfile", "shutil", "signal", "pathlib",
    "dataclasses", "inspect", "typing", "ipaddress",
    "o2cb_init.daemons", "o2cb_init.observed", "o2cb_init.configure",
    "o2cb_init.parts.control", "o2cb_init.stacks.cman", "o2cb_init.stacks.pcmk",
    "o2cb_init.stacks.heartbeat2",
)
USERSPACE = ("click", "psutil", "o2cb_init.parts.control", "o2cb_init.stacks.cman",
             "o2cb_init.stacks.pcmk", "o2cb_init.stacks.heartbeat2")

# Runs the command line as `python -m o2cb_init` and the console script do,
# then names every module the run imported (on stderr's last line, whatever
# the exit code).
# What the interpreter imported before the run (site hooks, .pth files of
# the installation) is not the run's.
IMPORTS_PROBE = """
import sys
at_start = set(sys.modules)
sys.argv = ["o2cb", *sys.argv[1:]]
from o2cb_init.entry import main
try:
    main()
finally:
    print("\\nIMPORTED " + " ".join(sorted(set(sys.modules) - at_start)), file=sys.stderr)
"""


def imported(sim: SimKernel, *args: str, simulated: bool = False) -> tuple[int, set[str], str]:
    """Exit code, modules imported and stdout of `o2cb --root ROOT ARGS` in a fresh python.

    ``simulated``: with the simulated kernel's rules (needed by verbs that
    change configfs), whose own modules then count as imported too.
    """
    env = sim.environment()
    if not simulated:  # the tree under test, without the simulated kernel's sitecustomize
        env.pop("O2CB_SIMKERNEL", None)
        env["PYTHONPATH"] = str(Path(o2cb_init.__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS_PROBE, "--root", str(sim.root), *args],
        env=env, capture_output=True, text=True, timeout=60, check=False, cwd="/",
    )
    last = done.stderr.rstrip("\n").rsplit("\n", 1)[-1]
    assert last.startswith("IMPORTED "), done.stderr
    return done.returncode, set(last.split()[1:]), done.stdout


def monitors(program: Path) -> list[int]:
    """Pids of the stand-in monitor.  Its shell forks for every `sleep`, and a
    fork that has not yet run `sleep` shows the same command line: a process
    whose parent is one of them is not another monitor."""
    pids = daemons.running_pids(str(program))
    return [pid for pid in pids if _parent(pid) not in pids]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.fixture
def monitor(machine: SimKernel) -> Iterator[Path]:
    """A stand-in o2hbmonitor in the root's /sbin, as Debian installs it: it
    daemonizes and its launch returns at once, as the real one does; killed after."""
    program = machine.root / "sbin" / "o2hbmonitor"
    program.parent.mkdir(exist_ok=True)
    program.write_text("#!/bin/sh\n(while :; do sleep 1; done) </dev/null >/dev/null 2>&1 &\n")
    program.chmod(0o755)
    yield program
    for pid in daemons.running_pids(str(program)):
        os.kill(pid, 9)


def test_status_on_the_classic_stack_imports_nothing_it_does_not_use(
    machine: SimKernel, monitor: Path
) -> None:
    code, modules, stdout = imported(machine, "status")
    assert code == 3 and "Offline" in stdout
    assert sorted(modules.intersection(NEVER_FOR_STATUS)) == []
    assert o2cb(machine, "start").exit_code == 0
    assert daemons.running_pids(str(monitor)), "start launched o2hbmonitor"
    for verb in ("status", "online-status"):
        code, modules, stdout = imported(machine, verb)
        assert code == 0 and ("Online" in stdout or stdout == "online\n"), stdout
        assert sorted(modules.intersection(NEVER_FOR_STATUS)) == [], verb
    code, modules, _ = imported(machine, "status", "--json")
    assert code == 0 and "json" in modules and "psutil" not in modules
    code, modules, stdout = imported(machine, "--help")
    assert code == 0 and "click" in modules and "Usage:" in stdout


def test_stop_on_the_classic_stack_signals_o2hbmonitor_without_psutil(
    machine: SimKernel, monitor: Path
) -> None:
    assert o2cb(machine, "start").exit_code == 0
    assert daemons.running_pids(str(monitor)), "start launched o2hbmonitor"
    code, modules, _ = imported(machine, "stop", simulated=True)
    assert code == 0
    assert "psutil" not in modules
    assert daemons.running_pids(str(monitor)) == []


def test_a_pid_taken_over_by_another_process_is_never_signalled() -> None:
    import signal

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        handle = daemons.Process(child.pid)
        handle._started = "0"  # as if the pid now belonged to a process started before
        handle.send_signal(signal.SIGTERM)
        assert not handle.alive()
        time.sleep(0.2)
        assert child.poll() is None, "the other process was signalled"
        handle = daemons.Process(child.pid)
        assert handle.alive()
        handle.send_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == -signal.SIGTERM
        assert not handle.alive()
    finally:
        child.kill()
        child.wait()


def test_start_on_the_classic_stack_imports_no_userspace_stack(
    machine: SimKernel, monitor: Path
) -> None:
    code, modules, _ = imported(machine, "start", simulated=True)
    assert code == 0
    assert sorted(modules.intersection(USERSPACE)) == []
    assert "o2cb_init.stacks.o2cb" in modules
    # addresses, of cluster.conf and of listening sockets, are read without it
    assert "ipaddress" not in modules
    # its records are written whole (System.replace_file) without tempfile
    assert "tempfile" not in modules and machine.path("/run/o2cb").is_dir()
    assert not [name for name in os.listdir(machine.path("/run/o2cb")) if name.startswith(".")]


def test_a_userspace_stack_is_imported_when_configured(machine: SimKernel) -> None:
    machine.write_config(CONFIG.replace("O2CB_STACK=o2cb", "O2CB_STACK=pcmk"))
    _, modules, _ = imported(machine, "status")
    assert {"o2cb_init.stacks.pcmk", "o2cb_init.parts.control"} <= modules
    assert "o2cb_init.stacks.o2cb" not in modules


def test_every_stack_name_leads_to_the_stack_of_that_name(machine: SimKernel) -> None:
    from o2cb_init.config import STACKS as CONFIGURABLE
    from o2cb_init.config import load
    from o2cb_init.report import Reporter
    from o2cb_init.stacks.base import Context
    from o2cb_init.system import System

    assert set(stacks.STACKS) == set(CONFIGURABLE)
    system = System(root=str(machine.root))
    for name in stacks.STACKS:
        machine.write_config(CONFIG.replace("O2CB_STACK=o2cb", f"O2CB_STACK={name}"))
        context = Context(system, load(system), Reporter())
        assert stacks.stack_for(context).name == name


def test_start_launches_o2hbmonitor_without_waiting_for_it(
    machine: SimKernel, monitor: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    naps: list[float] = []
    monkeypatch.setattr(time, "sleep", naps.append)
    monkeypatch.setenv("O2CB_DAEMON_SETTLE", "30")
    started = time.monotonic()
    result = o2cb(machine, "start")
    took = time.monotonic() - started
    assert result.exit_code == 0, result.stderr
    assert naps == [], "start slept or polled"
    assert took < 15, "a settle wait of 30 s would show"
    assert len(monitors(monitor)) == 1, "the monitor runs after start returned"
    assert o2cb(machine, "stop").exit_code == 0
    assert daemons.running_pids(str(monitor)) == []


def test_cluster_conf_is_parsed_once_per_run(
    machine: SimKernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def counting(text: str, path: str = clusterconf.CLUSTER_CONF) -> object:
        calls.append(path)
        return parse(text, path)

    monkeypatch.setattr(clusterconf, "parse", counting)
    for verb, code in (("start", 0), ("status", 0), ("stop", 0)):
        clusterconf._parsed.cache_clear()
        calls.clear()
        assert o2cb(machine, verb).exit_code == code
        assert len(calls) <= 1, f"{verb} parsed cluster.conf {len(calls)} times"
    assert calls == [], "stop needs no layout once the cluster is gone"


def test_a_cached_layout_never_outlives_its_file(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str]
) -> None:
    """Two roots with different layouts (or one file rewritten) each get their own."""
    from o2cb_init.system import System

    first, second = make_sim(), make_sim()
    first.write_cluster_conf(two_node_cluster_conf())
    second.write_cluster_conf(two_node_cluster_conf().replace("node2", "nodeB"))
    names = [[node.name for node in clusterconf.load(System(root=str(sim.root)))[CLUSTER].nodes]
             for sim in (first, second, first)]
    assert names == [["node1", "node2"], ["node1", "nodeB"], ["node1", "node2"]]


def layout(nodes: int) -> str:
    text = f"cluster:\n\tnode_count = {nodes}\n\tname = {CLUSTER}\n"
    for number in range(nodes):
        text += (f"node:\n\tip_port = 7777\n\tip_address = 10.9.{number // 250}."
                 f"{number % 250 + 1}\n\tnumber = {number}\n\tname = node{number + 1}\n"
                 f"\tcluster = {CLUSTER}\n")
    return text


def test_checking_a_layout_grows_linearly_with_its_nodes() -> None:
    """255 nodes cost about 4 times what 64 cost, not 16 times (an all-pairs check)."""

    def best(text: str) -> float:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            parse(text)
            times.append(time.perf_counter() - started)
        return min(times)

    small, large = best(layout(64)), best(layout(255))
    assert len(parse(layout(255))[CLUSTER].nodes) == 255
    assert large / small < 8, f"64 nodes {small * 1000:.1f} ms, 255 nodes {large * 1000:.1f} ms"


def test_a_duplicate_is_still_found_among_255_nodes() -> None:
    text = layout(255).replace("ip_address = 10.9.1.5\n", "ip_address = 10.9.0.7\n")
    with pytest.raises(clusterconf.ConfigError, match="ip_address 10.9.0.7 is already used"):
        parse(text)


# The simulated kernel's own code imports these while a verb runs, so the
# probe above cannot tell; what the package imports is read from its source.
NEVER_IMPORTED = {"subprocess", "shutil", "tempfile"}


def test_the_package_starts_programs_without_subprocess() -> None:
    import ast

    package = Path(o2cb_init.__file__).parent
    found = []
    for source in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [f"{source.name}:{node.lineno} {name}" for name in names
                      if name.split(".")[0] in NEVER_IMPORTED]
    assert found == []
