"""Helpers for the crash, fault and race tests: runs of o2cb and the clean states.

A faulted run goes through a subprocess (a SIGKILL must hit the tool, not
pytest); the runs that follow it go in-process through CliRunner.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clirunner import runner
from simkernel import SimKernel, faults

from o2cb_init.baseline import BASELINE_FILE
from o2cb_init.cli import cli

CLUSTER = "ocfs2"
# Non-default values, so that a default left in place shows.
CONFIG = (
    "O2CB_ENABLED=true\n"
    "O2CB_STACK=o2cb\n"
    f"O2CB_BOOTCLUSTER={CLUSTER}\n"
    "O2CB_HEARTBEAT_THRESHOLD=21\n"
    "O2CB_IDLE_TIMEOUT_MS=20000\n"
    "O2CB_KEEPALIVE_DELAY_MS=3000\n"
    "O2CB_RECONNECT_DELAY_MS=2500\n"
)


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


def o2cb(sim: SimKernel, *args: str) -> Run:
    result = runner().invoke(cli, ["--root", str(sim.root), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def o2cb_process(sim: SimKernel, *args: str, fault: str | None = None,
                 extra_env: dict[str, str] | None = None, timeout: float = 60) -> Run:
    env = sim.environment()
    env.pop(faults.VARIABLE, None)
    if fault:
        env[faults.VARIABLE] = fault
    env.update(extra_env or {})
    done = subprocess.run(
        [sys.executable, "-m", "o2cb_init", "--root", str(sim.root), *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def prepare(sim: SimKernel, cluster_conf: Callable[..., str]) -> SimKernel:
    sim.write_config(CONFIG)
    sim.write_cluster_conf(cluster_conf())
    return sim


def state(sim: SimKernel) -> dict[str, Any]:
    """What a verb may change, with paths relative to the root (comparable across roots)."""
    root = str(sim.root)
    return {
        "modules": sim.modules(),
        "mounts": sorted((point.replace(root, "", 1) or "/", fstype)
                         for point, fstype in sim.mounts()),
        "sysfs": sim.sysfs(),
        "tree": sim.tree(),
        "baseline": sim.path(BASELINE_FILE).exists(),
    }


def fault_points(sim: SimKernel, *args: str) -> dict[str, int]:
    """Run the verb once, counting its changes of each kind."""
    faults.reset(sim.root)
    run = o2cb_process(sim, *args, fault="count")
    assert run.exit_code == 0, run.stderr
    numbers = faults.counts(sim.root)
    faults.reset(sim.root)
    return numbers


def files(root: Path) -> dict[str, str]:
    """Every directory and file under the root, with a digest of each file."""
    seen: dict[str, str] = {}
    for directory, subdirectories, names in os.walk(root):
        for name in subdirectories:
            seen[os.path.relpath(os.path.join(directory, name), root)] = "<dir>"
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                seen[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return seen
