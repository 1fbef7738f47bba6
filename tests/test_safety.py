"""Safety under hostile arguments, broken configuration, partial clusters and a held lock.

On the simulated kernel, through the command line; every assertion is on
the kernel's state and the exit code.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from faultbed import state
from runs import CLUSTER, o2cb, o2cb_process, prepare
from simkernel import SimKernel

from o2cb_init.lock import LOCK_FILE

# -- stop and status never depend on the config file ------------------------------


BROKEN = ["missing", "this is not a setting\n", "O2CB_STACK=nosuch\nO2CB_ENABLED=true\n"]


def break_config(sim: SimKernel, broken: str) -> None:
    if broken == "missing":
        sim.path("/etc/default/o2cb").unlink()
    else:
        sim.write_config(broken)


@pytest.mark.parametrize("broken", BROKEN)
def test_stop_with_a_broken_config_takes_down_what_runs(machine: SimKernel, broken: str) -> None:
    clean = state(machine)
    assert o2cb(machine, "start").exit_code == 0
    break_config(machine, broken)
    status = o2cb(machine, "status")
    assert status.exit_code == 0, status.stdout + status.stderr
    assert f'Checking O2CB cluster "{CLUSTER}": Online' in status.stdout
    stop = o2cb(machine, "stop")
    assert stop.exit_code == 0, stop.stdout + stop.stderr
    assert state(machine) == clean
    assert o2cb(machine, "stop").exit_code == 0, "stop on stopped"
    assert o2cb(machine, "status").exit_code == 3


@pytest.mark.parametrize("broken", BROKEN)
def test_force_offline_with_a_broken_config(online: SimKernel, broken: str) -> None:
    break_config(online, broken)
    run = o2cb(online, "force-offline")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert online.tree() == {}
    assert "ocfs2_stack_o2cb" in online.modules(), "offline keeps the drivers"


@pytest.mark.parametrize("broken", BROKEN)
def test_start_with_a_broken_config_loads_nothing(machine: SimKernel, broken: str) -> None:
    break_config(machine, broken)
    before = state(machine)
    run = o2cb(machine, "start")
    assert run.exit_code == 6
    assert state(machine) == before


def test_stop_with_a_broken_config_still_protects_a_mounted_volume(online: SimKernel) -> None:
    online.mount_ocfs2_volume(CLUSTER)
    break_config(online, "missing")
    run = o2cb(online, "stop")
    assert run.exit_code == 1
    assert online.tree()[CLUSTER] == "<dir>"
    assert online.held_regions()


# -- hostile cluster arguments -------------------------------------------------------


HOSTILE = [f"{CLUSTER}/node/node2", f"../cluster/{CLUSTER}", "..", ".", f"{CLUSTER}/heartbeat"]


@pytest.mark.parametrize("verb", ["offline", "force-offline", "stop", "unload", "online",
                                  "start", "status", "online-status"])
def test_a_cluster_argument_never_reaches_another_object(online: SimKernel, verb: str) -> None:
    before = state(online)
    for name in HOSTILE:
        run = o2cb(online, verb, name)
        assert run.exit_code not in (0, 3), (name, run.stdout)
        assert "Traceback" not in run.stdout + run.stderr
        assert state(online) == before, name
    assert online.tree()[f"{CLUSTER}/node/node2"] == "<dir>"


def test_a_layout_without_this_host_exits_6_before_anything_loads(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str]
) -> None:
    sim = prepare(make_sim(hostname="stranger"), two_node_cluster_conf)
    before = state(sim)
    assert o2cb(sim, "start").exit_code == 6
    assert state(sim) == before


# -- online means complete --------------------------------------------------------------


def test_a_partial_cluster_is_partial_and_start_finishes_it(
    machine: SimKernel, two_node_cluster_conf: Callable[..., str]
) -> None:
    reference = prepare(machine, two_node_cluster_conf)
    assert o2cb(reference, "start").exit_code == 0
    complete = state(reference)
    # Killed after the cluster and its first node were made: node2 and local=1 missing.
    assert o2cb(reference, "stop").exit_code == 0
    killed = o2cb_process(machine, "start", fault="configfs:3:killafter")
    assert killed.exit_code == -9
    assert machine.tree()[CLUSTER] == "<dir>"
    status = o2cb(machine, "status")
    assert status.exit_code == 1
    assert f'Checking O2CB cluster "{CLUSTER}": Partial' in status.stdout
    assert "Missing:" in status.stdout and "node node2" in status.stdout
    assert o2cb(machine, "online-status").stdout.strip() == "offline"
    start = o2cb(machine, "start")
    assert start.exit_code == 0, start.stdout + start.stderr
    assert state(machine) == complete
    assert o2cb(machine, "status").exit_code == 0


def test_a_cluster_without_local_is_partial(online: SimKernel) -> None:
    """local=0 on this node after a kill just before its write."""
    local = online.configfs() / "cluster" / CLUSTER / "node" / "node1" / "local"
    assert local.read_text().strip() == "1"
    complete = state(online)
    assert o2cb(online, "stop").exit_code == 0
    last = 0
    # Count the writes of a start, then kill just before the last one (local=1).
    from faultbed import fault_points

    last = fault_points(online, "start")["configfs"]
    assert o2cb(online, "stop").exit_code == 0
    killed = o2cb_process(online, "start", fault=f"configfs:{last}:kill")
    assert killed.exit_code == -9
    status = o2cb(online, "status")
    assert status.exit_code == 1
    assert "local=1 on node node1" in status.stdout
    assert o2cb(online, "start").exit_code == 0
    assert state(online) == complete


# -- one run at a time -------------------------------------------------------------------


@pytest.fixture
def held_lock(machine: SimKernel) -> Iterator[Path]:
    path = machine.path(LOCK_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    try:
        yield path
    finally:
        os.close(fd)


@pytest.mark.parametrize("verb", ["start", "stop", "load", "online", "offline", "restart"])
def test_a_second_run_waits_then_names_the_holder(
    machine: SimKernel, held_lock: Path, verb: str
) -> None:
    before = state(machine)
    began = time.monotonic()
    run = o2cb_process(machine, verb, extra_env={"O2CB_LOCK_TIMEOUT": "0.5"})
    waited = time.monotonic() - began
    assert run.exit_code == 1
    assert f"pid {os.getpid()}" in run.stderr
    assert len(run.stderr.splitlines()) == 1
    assert waited >= 0.5
    assert state(machine) == before


def test_status_never_waits_for_the_lock(machine: SimKernel, held_lock: Path) -> None:
    began = time.monotonic()
    run = o2cb_process(machine, "status", extra_env={"O2CB_LOCK_TIMEOUT": "30"})
    assert run.exit_code == 3
    assert time.monotonic() - began < 15


def test_a_run_goes_on_once_the_holder_is_gone(machine: SimKernel) -> None:
    """A lock file left by a killed run does not block: the kernel dropped its flock."""
    path = machine.path(LOCK_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("999999\n")
    assert o2cb_process(machine, "start", extra_env={"O2CB_LOCK_TIMEOUT": "1"}).exit_code == 0


def test_status_json_dumps_the_cluster_with_numbers(online: SimKernel) -> None:
    import json

    run = o2cb(online, "status", "--json")
    assert run.exit_code == 0
    dumped = json.loads(run.stdout)["configfs"]
    assert dumped["node"]["node1"]["local"] == 1
    assert dumped["node"]["node2"]["num"] == 1
    assert dumped["node"]["node2"]["ipv4_address"] == "10.0.0.2"
    assert dumped["idle_timeout_ms"] == 20000
    assert dumped["heartbeat"]["dead_threshold"] == 21
