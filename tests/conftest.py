"""Shared fixtures: a simulated kernel per test (see tests/simkernel), configured or online.

The plain helpers (``o2cb``, ``prepare``, ``Run``) are in tests/runs.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from runs import o2cb, prepare  # noqa: E402
from simkernel import SimKernel  # noqa: E402
from simkernel import two_node_cluster_conf as _two_node_cluster_conf  # noqa: E402
from simkernel.configfs_rules import install as _install_rules  # noqa: E402


def _activate(sim: SimKernel, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point this process's environment at ``sim`` and enforce the configfs rules.

    The environment becomes exactly ``sim.environment()``, variables it drops
    included: the programs a verb run in this process starts inherit it.
    """
    environment = sim.environment()
    for key in set(os.environ) - set(environment):
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    _install_rules(monkeypatch=monkeypatch)


@pytest.fixture
def make_sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., SimKernel]:
    """Factory: ``make_sim(profile="legacy12", hostname=..., config_mount=...)``.

    Each call builds a new root under tmp_path and makes it the active one
    (O2CB_ROOT; the fakes are first on PATH either way).
    """
    count = 0

    def make(
        profile: str = "modern",
        hostname: str = "node1",
        config_mount: str = "/sys/kernel/config",
        root: Path | None = None,
        recover_callbacks: bool = True,
    ) -> SimKernel:
        nonlocal count
        count += 1
        target = root if root is not None else tmp_path / ("root" if count == 1 else f"root{count}")
        sim = SimKernel.create(
            target, profile=profile, hostname=hostname, config_mount=config_mount,
            recover_callbacks=recover_callbacks,
        )
        _activate(sim, monkeypatch)
        return sim

    return make


@pytest.fixture
def sim(make_sim: Callable[..., SimKernel]) -> SimKernel:
    """A modern (Debian 12) simulated kernel on tmp_path/root, nothing loaded yet."""
    return make_sim()


@pytest.fixture
def two_node_cluster_conf() -> Callable[..., str]:
    """The cluster.conf helper: ``two_node_cluster_conf(hostname="node1", name="ocfs2")``."""
    return _two_node_cluster_conf


@pytest.fixture
def machine(sim: SimKernel, two_node_cluster_conf: Callable[..., str]) -> SimKernel:
    """A modern kernel, nothing loaded, the o2cb stack configured for cluster ocfs2."""
    return prepare(sim, two_node_cluster_conf)


@pytest.fixture
def online(machine: SimKernel) -> SimKernel:
    """``machine`` after a successful start."""
    run = o2cb(machine, "start")
    assert run.exit_code == 0, run.stderr
    return machine
