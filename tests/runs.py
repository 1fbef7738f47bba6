"""Runs of o2cb against a simulated kernel, and the configuration most tests start from.

``o2cb`` runs the command line in-process through click's CliRunner;
``o2cb_process`` runs ``python -m o2cb_init`` in a subprocess, for what must
hit a process of its own (a fault that kills the tool, a SIGKILL).  Both
return a ``Run``.  The ``machine`` and ``online`` fixtures of conftest.py are
built from ``prepare`` and ``o2cb``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from clirunner import invoke
from simkernel import SimKernel, faults

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

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def errors(self) -> list[str]:
        return self.stderr.splitlines()

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def o2cb(sim: SimKernel, *args: str) -> Run:
    """Run the command line in this process against ``sim``'s root."""
    result = invoke(cli, ["--root", str(sim.root), *args])
    return Run(result.exit_code, result.stdout, result.stderr)


def o2cb_process(sim: SimKernel, *args: str, fault: str | None = None,
                 extra_env: dict[str, str] | None = None, timeout: float = 60) -> Run:
    """Run ``python -m o2cb_init`` against ``sim``, with an injected fault if asked."""
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


def prepare(sim: SimKernel, cluster_conf: Callable[..., str], config: str = CONFIG) -> SimKernel:
    """Write ``config`` as /etc/default/o2cb and ``cluster_conf()`` as cluster.conf."""
    sim.write_config(config)
    sim.write_cluster_conf(cluster_conf())
    return sim
