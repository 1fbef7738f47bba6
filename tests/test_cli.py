"""The command line's surface: help, version, usage errors, and the LSB exit codes
for failures a user causes (4 not root, 5 a program missing, 6 not configured),
each one line on stderr without a traceback.  One test runs the installed
``o2cb.init`` from a shell, as an init system would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from clirunner import invoke as invoke_command
from simkernel import SimKernel

from o2cb_init import __version__
from o2cb_init.cli import cli
from o2cb_init.system import System

CONFIG = "O2CB_ENABLED=true\nO2CB_STACK=o2cb\nO2CB_BOOTCLUSTER=ocfs2\n"

VERBS = [
    "start", "stop", "restart", "force-reload", "load", "unload", "online", "offline",
    "force-offline", "status", "online-status", "enable", "disable", "configure", "reload",
    "check",
]
# Verbs that change the machine, and so need root on the real one.
CHANGING = [verb for verb in VERBS if verb not in ("status", "online-status", "check")]


def invoke(*args: str) -> Result:
    return invoke_command(cli, args, prog_name="o2cb")


def assert_one_line_error(result: Result) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("o2cb: ")


@pytest.fixture
def machine(sim: SimKernel, two_node_cluster_conf: Callable[..., str]) -> SimKernel:
    sim.write_config(CONFIG)
    sim.write_cluster_conf(two_node_cluster_conf())
    return sim


# -- help and version ------------------------------------------------------------


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(verb: str) -> None:
    result = invoke(verb, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: o2cb {verb} ")
    assert result.stderr == ""


def test_help_lists_every_verb() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for verb in VERBS:
        assert f"  {verb} " in result.stdout


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"o2cb, version {__version__}\n"


# -- usage errors: exit 2 --------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["bogus"], ["--bogus", "status"], ["status", "--bogus"], ["start", "a", "b"]],
    ids=["unknown verb", "bad global option", "bad verb option", "extra argument"],
)
def test_usage_errors_exit_2(machine: SimKernel, args: list[str]) -> None:
    before = machine.snapshot()
    result = invoke("--root", str(machine.root), *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert_one_line_error(result)
    assert "--help" in result.stderr
    assert machine.snapshot() == before


def test_no_verb_is_a_usage_error_with_the_help_on_stderr() -> None:
    result = invoke()
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Usage: o2cb [OPTIONS] COMMAND")


# -- not root: exit 4 ------------------------------------------------------------


@pytest.fixture
def not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(System, "is_root_user", lambda self: False)


@pytest.mark.parametrize("verb", CHANGING)
def test_changing_verbs_need_root_on_the_real_machine(
    not_root: None, machine: SimKernel, monkeypatch: pytest.MonkeyPatch, verb: str
) -> None:
    # Fail loudly rather than touch this machine if the check were missing.
    def refuse(self: System, argv: list[str], changes: bool = True) -> None:
        raise AssertionError(f"ran {argv} on the real machine")

    monkeypatch.setattr(System, "run", refuse)
    monkeypatch.delenv("O2CB_ROOT")
    result = invoke("--root", "/", verb)
    assert result.exit_code == 4
    assert_one_line_error(result)
    assert "root" in result.stderr


def test_root_given_skips_the_root_check(not_root: None, machine: SimKernel) -> None:
    result = invoke("--root", str(machine.root), "start")
    assert result.exit_code == 0, result.stderr
    assert machine.tree()["ocfs2/node/node1/local"] == "1"


# -- a program missing: exit 5 ---------------------------------------------------


@pytest.mark.parametrize("verb", ["start", "load", "online"])
def test_missing_modprobe_exits_5(
    machine: SimKernel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, verb: str
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    before = machine.snapshot()
    result = invoke("--root", str(machine.root), verb)
    assert result.exit_code == 5
    assert_one_line_error(result)
    assert "modprobe" in result.stderr
    assert machine.snapshot() == before


# -- not configured: exit 6 ------------------------------------------------------


def test_missing_config_exits_6(sim: SimKernel) -> None:
    result = invoke("--root", str(sim.root), "start")
    assert result.exit_code == 6
    assert_one_line_error(result)
    assert "/etc/default/o2cb" in result.stderr


def test_missing_config_given_with_config_exits_6(machine: SimKernel) -> None:
    result = invoke("--root", str(machine.root), "--config", "/etc/nosuch", "start")
    assert result.exit_code == 6
    assert_one_line_error(result)
    assert "/etc/nosuch" in result.stderr


def test_invalid_config_exits_6(machine: SimKernel) -> None:
    machine.write_config(CONFIG + "O2CB_IDLE_TIMEOUT_MS=soon\n")
    result = invoke("--root", str(machine.root), "start")
    assert result.exit_code == 6
    assert_one_line_error(result)
    assert "/etc/default/o2cb:4" in result.stderr


def test_invalid_cluster_conf_exits_6(machine: SimKernel) -> None:
    machine.write_cluster_conf("node:\n\tname = node1\n")
    result = invoke("--root", str(machine.root), "start")
    assert result.exit_code == 6
    assert_one_line_error(result)
    assert "/etc/ocfs2/cluster.conf" in result.stderr
    assert machine.tree() == {}


# -- from a shell ----------------------------------------------------------------


def test_start_then_status_from_a_shell(machine: SimKernel) -> None:
    env = machine.environment()
    if shutil.which("o2cb.init", path=env["PATH"]) is None:
        pytest.skip("the o2cb.init command is not installed on PATH")
    root = str(machine.root)
    completed = subprocess.run(
        ["sh", "-c", 'o2cb.init --root "$1" start && o2cb.init --root "$1" status', "sh", root],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(root),
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    lines = completed.stdout.splitlines()
    assert lines[-14:] == [
        'Driver for "configfs": Loaded',
        'Filesystem "configfs": Mounted',
        "Stack glue driver: Loaded",
        'Stack plugin "o2cb": Loaded',
        'Driver for "ocfs2_dlmfs": Loaded',
        'Filesystem "ocfs2_dlmfs": Mounted',
        'Checking O2CB cluster "ocfs2": Online',
        "  Heartbeat dead threshold: 31",
        "  Network idle timeout: 30000",
        "  Network keepalive delay: 2000",
        "  Network reconnect delay: 2000",
        "  Heartbeat mode: Local",
        "Checking O2CB heartbeat: Not active",
        "Debug file system at /sys/kernel/debug: not mounted",
    ]
    assert lines[0] == 'Loading filesystem "configfs": OK'
    assert "Setting O2CB cluster timeouts : OK" in lines
    assert machine.tree()["ocfs2/node/node1/local"] == "1"


# -- which node is this host -----------------------------------------------------


@pytest.mark.parametrize("hostname", ["NODE1", "node1.example.com", "Node1.Example.Com"])
def test_the_local_node_is_the_host_name_up_to_a_dot_ignoring_case(
    machine: SimKernel, hostname: str
) -> None:
    machine.set_hostname(hostname)
    result = invoke("--root", str(machine.root), "start")
    assert result.exit_code == 0, result.stderr
    assert machine.tree()["ocfs2/node/node1/local"] == "1"
    assert machine.tree()["ocfs2/node/node2/local"] == "0"


@pytest.mark.parametrize("hostname", ["node", "node10", "xnode1.example.com"])
def test_a_host_not_in_the_layout_exits_6_with_nothing_loaded(
    machine: SimKernel, hostname: str
) -> None:
    machine.set_hostname(hostname)
    before = machine.snapshot()
    result = invoke("--root", str(machine.root), "start")
    assert result.exit_code == 6
    assert_one_line_error(result)
    assert f"This node ({hostname}) is not a node of cluster ocfs2" in result.stderr
    assert machine.snapshot() == before
