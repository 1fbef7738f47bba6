"""Every change of start, online and stop failed or killed in turn.

For each modprobe, mount, umount and configfs write the verb makes, on a
fresh simulated kernel: the call fails (the tool must undo what this run
did), or the tool is SIGKILLed before or right after it (nothing can be
undone).  Each is followed by status, a retry and a stop, and checked
against the clean states: the state a normal start gives, and the state
before anything ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from faultbed import fault_points, state
from runs import CLUSTER, o2cb, o2cb_process, prepare
from simkernel import SimKernel, faults


def cases(numbers: dict[str, int], after: bool = True) -> Iterator[tuple[str, int, str]]:
    """Each call failed and killed before it; configfs writes also killed right after
    (for a command, killed after is the same state as killed before the next one)."""
    for kind in faults.KINDS:
        for number in range(1, numbers.get(kind, 0) + 1):
            yield kind, number, "fail"
            yield kind, number, "kill"
            if after and kind == "configfs":
                yield kind, number, "killafter"


@pytest.fixture
def reference(make_sim: Callable[..., SimKernel],
              two_node_cluster_conf: Callable[..., str]) -> dict[str, Any]:
    """The clean states and the fault points, from a run without faults."""
    sim = prepare(make_sim(), two_node_cluster_conf)
    offline = state(sim)
    load_points = fault_points(sim, "load")
    loaded = state(sim)
    online_points = fault_points(sim, "online")
    online = state(sim)
    stop_points = fault_points(sim, "stop")
    assert state(sim) == offline
    start_points = fault_points(sim, "start")
    assert state(sim) == online
    assert o2cb(sim, "stop").exit_code == 0
    return {
        "offline": offline, "loaded": loaded, "online": online,
        "points": {"start": start_points, "online": online_points, "stop": stop_points,
                   "load": load_points},
    }


def assert_recovers(sim: SimKernel, reference: dict[str, Any], what: str) -> None:
    """status answers, start reaches the clean online state, stop the clean offline one."""
    status = o2cb(sim, "status")
    assert status.exit_code in (0, 1, 3), f"{what}: status {status.exit_code} {status.stderr}"
    assert "Traceback" not in status.stdout + status.stderr
    if state(sim) == reference["online"]:
        assert status.exit_code == 0, what
    retry = o2cb(sim, "start")
    assert retry.exit_code == 0, f"{what}: retry {retry.stdout} {retry.stderr}"
    assert state(sim) == reference["online"], what
    assert o2cb(sim, "status").exit_code == 0, what
    stop = o2cb(sim, "stop")
    assert stop.exit_code == 0, f"{what}: stop {stop.stdout} {stop.stderr}"
    assert state(sim) == reference["offline"], what


def test_every_fault_point_of_start(make_sim: Callable[..., SimKernel],
                                    two_node_cluster_conf: Callable[..., str],
                                    reference: dict[str, Any]) -> None:
    points = reference["points"]["start"]
    assert points.get("modprobe", 0) >= 4 and points.get("configfs", 0) >= 10, points
    for kind, number, action in cases(points):
        what = f"start, {kind} call {number}: {action}"
        sim = prepare(make_sim(), two_node_cluster_conf)
        run = o2cb_process(sim, "start", fault=f"{kind}:{number}:{action}")
        assert "Traceback" not in run.stderr, what
        if action == "fail":
            assert run.exit_code == 1, f"{what}: {run.stdout} {run.stderr}"
            assert state(sim) == reference["offline"], f"{what}: not undone"
        else:
            assert run.exit_code == -9, f"{what}: {run.exit_code} {run.stderr}"
        assert_recovers(sim, reference, what)


def test_every_fault_point_of_online_from_loaded(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str],
    reference: dict[str, Any],
) -> None:
    points = reference["points"]["online"]
    assert points.get("configfs", 0) >= 10, points
    for kind, number, action in cases(points, after=False):
        what = f"online, {kind} call {number}: {action}"
        sim = prepare(make_sim(), two_node_cluster_conf)
        assert o2cb(sim, "load").exit_code == 0
        run = o2cb_process(sim, "online", fault=f"{kind}:{number}:{action}")
        if action == "fail":
            assert run.exit_code == 1, f"{what}: {run.stdout} {run.stderr}"
            assert state(sim) == reference["loaded"], f"{what}: not undone"
        else:
            assert run.exit_code == -9, what
        assert_recovers(sim, reference, what)


def test_every_fault_point_of_stop(make_sim: Callable[..., SimKernel],
                                   two_node_cluster_conf: Callable[..., str],
                                   reference: dict[str, Any]) -> None:
    points = reference["points"]["stop"]
    assert points.get("modprobe", 0) >= 3 and points.get("umount", 0) >= 2, points
    for kind, number, action in cases(points):
        what = f"stop, {kind} call {number}: {action}"
        sim = prepare(make_sim(), two_node_cluster_conf)
        assert o2cb(sim, "start").exit_code == 0
        run = o2cb_process(sim, "stop", fault=f"{kind}:{number}:{action}")
        assert "Traceback" not in run.stderr, what
        assert run.exit_code == (1 if action == "fail" else -9), f"{what}: {run.stderr}"
        status = o2cb(sim, "status")
        assert status.exit_code in (0, 1, 3), what
        again = o2cb(sim, "stop")
        assert again.exit_code == 0, f"{what}: {again.stdout} {again.stderr}"
        assert state(sim) == reference["offline"], what
        assert o2cb(sim, "start").exit_code == 0, what
        assert state(sim) == reference["online"], what


def test_a_refused_local_node_write_leaves_the_kernel_as_before(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str],
    reference: dict[str, Any],
) -> None:
    """The last write of start (local=1) refused: modules, mounts, configfs as before."""
    sim = prepare(make_sim(), two_node_cluster_conf)
    last = reference["points"]["start"]["configfs"]
    run = o2cb_process(sim, "start", fault=f"configfs:{last}:fail")
    assert run.exit_code == 1
    assert "local" in run.stderr
    assert state(sim) == reference["offline"]
    assert CLUSTER not in sim.tree()


def test_a_mount_another_process_made_meanwhile_counts_as_done(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str],
    reference: dict[str, Any],
) -> None:
    """mount fails because the file system got mounted there meanwhile: /proc/mounts is
    read again, the step is OK and start goes on (the reference fixed this race too)."""
    for number in range(1, reference["points"]["start"]["mount"] + 1):
        sim = prepare(make_sim(), two_node_cluster_conf)
        what = f"mount {number} raced"
        run = o2cb_process(sim, "start", fault=f"mount:{number}:raced")
        assert run.exit_code == 0, f"{what}: {run.stdout} {run.stderr}"
        assert "Failed" not in run.stdout, what
        assert state(sim) == reference["online"], what
        assert_recovers(sim, reference, what)


def test_an_item_another_program_removed_meanwhile_counts_as_removed(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str],
    reference: dict[str, Any],
) -> None:
    """Each configfs removal of stop finds its item gone (removed by another program
    between the listing and the rmdir): stop goes on and ends offline."""
    for number in range(1, reference["points"]["stop"]["configfs"] + 1):
        sim = prepare(make_sim(), two_node_cluster_conf)
        assert o2cb(sim, "start").exit_code == 0
        what = f"configfs {number} of stop raced"
        run = o2cb_process(sim, "stop", fault=f"configfs:{number}:raced")
        assert run.exit_code == 0, f"{what}: {run.stdout} {run.stderr}"
        assert "Failed" not in run.stdout, what
        assert state(sim) == reference["offline"], what


def test_a_start_killed_before_local_is_partial(make_sim: Callable[..., SimKernel],
                                                two_node_cluster_conf: Callable[..., str],
                                                reference: dict[str, Any]) -> None:
    """Timeouts are written before local=1: a start killed at local=1 has them all,
    and the cluster is still partial."""
    last = reference["points"]["start"]["configfs"]
    sim = prepare(make_sim(), two_node_cluster_conf)
    run = o2cb_process(sim, "start", fault=f"configfs:{last}:kill")
    assert run.exit_code != 0
    tree = sim.tree()
    assert tree[f"{CLUSTER}/node/node1/local"] == "0"
    assert tree[f"{CLUSTER}/reconnect_delay_ms"] == "2500"
    status = o2cb(sim, "status")
    assert status.exit_code == 1, status.stdout
    assert f'Checking O2CB cluster "{CLUSTER}": Partial' in status.stdout
    assert "  Missing: local=1 on node node1" in status.stdout.splitlines()
