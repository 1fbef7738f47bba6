"""scripts/o2cb, the init script, run as init systems and administrators run it:
through /bin/sh in a subprocess.  It must not run code from the caller's
directory, must say "not installed" (exit 5) when the Python package is
missing, and keeps RHEL's /var/lock/subsys/o2cb lock file in step with the
stack so that a chkconfig-based shutdown runs `stop`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path

import pytest
from simkernel import SimKernel

from o2cb_init import __version__

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "o2cb"
CONFIG = "O2CB_ENABLED=true\nO2CB_STACK=o2cb\nO2CB_BOOTCLUSTER=ocfs2\n"


def run_script(
    *args: str, env: dict[str, str] | None = None, cwd: Path | str = "/"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(SCRIPT), *args],
        env=env if env is not None else {**os.environ, "O2CB_PYTHON": sys.executable},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def lsb_header() -> dict[str, list[str]]:
    text = SCRIPT.read_text()
    block = text.split("### BEGIN INIT INFO\n", 1)[1].split("### END INIT INFO", 1)[0]
    fields: dict[str, list[str]] = {}
    for line in block.splitlines():
        match = re.match(r"# ([A-Za-z-]+):(.*)$", line)
        if match:
            fields[match.group(1)] = match.group(2).split()
    return fields


# -- the LSB header --------------------------------------------------------------


def test_header_starts_after_local_fs_and_network_and_before_remote_fs() -> None:
    header = lsb_header()
    assert header["Provides"] == ["o2cb"]
    assert set(header["Required-Start"]) == {"$local_fs", "$network"}
    assert set(header["Required-Stop"]) == {"$local_fs", "$network"}
    # OCFS2 volumes are _netdev mounts that wait for o2cb: o2cb waiting for
    # $remote_fs is the ordering cycle systemd breaks by dropping remote-fs.target.
    for field in ("Required-Start", "Should-Start", "Required-Stop", "Should-Stop"):
        assert "$remote_fs" not in header.get(field, [])
    assert header["X-Start-Before"] == ["$remote_fs"]
    assert header["Default-Start"] == ["2", "3", "4", "5"]


def test_header_starts_after_shared_storage_and_stops_before_it() -> None:
    """The iSCSI login, multipath maps and udev come first where they are installed."""
    header = lsb_header()
    for field in ("Should-Start", "Should-Stop"):
        assert set(header[field]) == {
            "$syslog", "iscsid", "open-iscsi", "multipath-tools", "udev", "corosync", "dlm",
        }
    for field in ("Required-Start", "Required-Stop"):
        assert not {"iscsid", "open-iscsi", "multipath-tools", "udev"} & set(header[field])


def test_script_uses_the_lsb_functions_for_the_systemd_redirect() -> None:
    text = SCRIPT.read_text()
    assert re.search(r"^\s*\. /lib/lsb/init-functions$", text, re.M)


# -- isolation from the caller's directory ---------------------------------------


def test_a_click_module_in_the_current_directory_is_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "click.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "o2cb_init").mkdir()
    (tmp_path / "o2cb_init" / "__main__.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
    )
    completed = run_script("--version", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == f"o2cb, version {__version__}\n"
    assert not marker.exists()


def test_pythonpath_does_not_reach_the_interpreter(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "click.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    env = {**os.environ, "O2CB_PYTHON": sys.executable, "PYTHONPATH": str(tmp_path)}
    completed = run_script("--version", env=env)
    assert completed.returncode == 0, completed.stderr
    assert not marker.exists()


# -- exit 5: not installed ---------------------------------------------------------


def test_exit_5_when_the_package_is_not_installed(tmp_path: Path) -> None:
    venv.create(tmp_path / "bare", with_pip=False)
    python = tmp_path / "bare" / "bin" / "python"
    completed = run_script("start", env={**os.environ, "O2CB_PYTHON": str(python)})
    assert completed.returncode == 5
    assert completed.stdout == ""
    assert completed.stderr == (
        f"o2cb: the o2cb_init Python package is not installed for {python}\n"
    )


def test_exit_5_when_the_interpreter_is_not_installed(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-python")
    completed = run_script("status", env={**os.environ, "O2CB_PYTHON": missing})
    assert completed.returncode == 5
    assert completed.stderr == f"o2cb: {missing}: not installed\n"


# -- the RHEL lock file ----------------------------------------------------------


@pytest.fixture
def machine(sim: SimKernel, two_node_cluster_conf: Callable[..., str]) -> SimKernel:
    sim.write_config(CONFIG)
    sim.write_cluster_conf(two_node_cluster_conf())
    return sim


@pytest.fixture
def sim_python(tmp_path: Path) -> Path:
    """An interpreter for the simulated kernel: the configfs rules live in a
    sitecustomize that `-I` would keep out, so this one drops `-I`."""
    wrapper = tmp_path / "sim-python"
    wrapper.write_text(f'#!/bin/sh\n[ "$1" = -I ] && shift\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def lock_env(machine: SimKernel, python: Path, lockdir: Path) -> dict[str, str]:
    return {**machine.environment(), "O2CB_PYTHON": str(python), "O2CB_LOCKDIR": str(lockdir)}


def test_lock_file_follows_start_and_stop(
    machine: SimKernel, sim_python: Path, tmp_path: Path
) -> None:
    lockdir = tmp_path / "subsys"
    lockdir.mkdir()
    env = lock_env(machine, sim_python, lockdir)

    started = run_script("start", env=env)
    assert started.returncode == 0, started.stderr
    assert "ocfs2_stack_o2cb" in machine.modules()
    assert (lockdir / "o2cb").exists()

    stopped = run_script("stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert machine.modules() == {}
    assert not (lockdir / "o2cb").exists()


def test_no_lock_file_when_start_fails(
    machine: SimKernel, sim_python: Path, tmp_path: Path
) -> None:
    lockdir = tmp_path / "subsys"
    lockdir.mkdir()
    machine.write_config("O2CB_ENABLED=true\nO2CB_STACK=nonsense\n")
    completed = run_script("start", env=lock_env(machine, sim_python, lockdir))
    assert completed.returncode == 6
    assert not (lockdir / "o2cb").exists()


def test_no_lock_directory_no_lock_file(
    machine: SimKernel, sim_python: Path, tmp_path: Path
) -> None:
    lockdir = tmp_path / "subsys"  # not created: not a RHEL-style machine
    completed = run_script("start", env=lock_env(machine, sim_python, lockdir))
    assert completed.returncode == 0, completed.stderr
    assert not lockdir.exists()
