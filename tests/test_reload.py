"""`reload`: each difference between the running cluster and the files, applied or refused.

Applied online: nodes added, idle nodes removed, global regions started and
stopped (never under a mounted volume).  Refused whole, with nothing
changed: timeouts, the heartbeat mode, a running node's number or address,
the removal of a node that heartbeats or is connected.  A stopped cluster
is exit 7.  A fault at each configfs write of a reload is undone.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from faultbed import fault_points, state
from runs import CLUSTER, CONFIG, o2cb, o2cb_process
from simkernel import SimKernel, o2net, two_node_cluster_conf
from test_global_heartbeat import NO_DEVICE_WAIT, cluster_conf, images  # noqa: F401

from o2cb_init.parts.drift import APPLIED_FILE

THIRD_NODE = (
    "\nnode:\n\tip_port = 7777\n\tip_address = 10.0.0.3\n\tnumber = 2\n"
    f"\tname = node3\n\tcluster = {CLUSTER}\n"
)
WITHOUT_PEER = two_node_cluster_conf().split("node:\n")
ONLY_THIS_NODE = "node:\n" + WITHOUT_PEER[1] + "cluster:" + two_node_cluster_conf().split(
    "cluster:")[1]


def with_third_node(sim: SimKernel) -> None:
    sim.write_cluster_conf(two_node_cluster_conf() + THIRD_NODE)


def test_reload_adds_a_node(online: SimKernel) -> None:
    with_third_node(online)
    run = o2cb(online, "reload")
    assert run.exit_code == 0, run.stderr
    assert run.lines == [f'Adding nodes to O2CB cluster "{CLUSTER}": OK']
    tree = online.tree()
    assert (tree[f"{CLUSTER}/node/node3/num"], tree[f"{CLUSTER}/node/node3/ipv4_address"],
            tree[f"{CLUSTER}/node/node3/ipv4_port"]) == ("2", "10.0.0.3", "7777")
    status = o2cb(online, "status")
    assert status.exit_code == 0 and "Pending" not in status.stdout


def test_force_reload_is_reload(online: SimKernel) -> None:
    with_third_node(online)
    run = o2cb(online, "force-reload")
    assert run.exit_code == 0, run.stderr
    assert "Stopping" not in run.stdout
    assert f"{CLUSTER}/node/node3" in online.tree()


def test_reload_adds_a_node_under_a_mounted_volume(online: SimKernel) -> None:
    online.mount_ocfs2_volume(CLUSTER)
    with_third_node(online)
    run = o2cb(online, "reload")
    assert run.exit_code == 0, run.stderr
    assert f"{CLUSTER}/node/node3" in online.tree()
    assert online.is_mounted("/mnt/vol")


def test_reload_removes_an_idle_node(online: SimKernel) -> None:
    online.write_cluster_conf(ONLY_THIS_NODE)
    run = o2cb(online, "reload")
    assert run.exit_code == 0, run.stderr
    assert run.lines == [f'Removing node "node2" from O2CB cluster "{CLUSTER}": OK']
    assert f"{CLUSTER}/node/node2" not in online.tree()
    assert online.tree()[f"{CLUSTER}/node/node1/local"] == "1"


@pytest.mark.parametrize("where", ["live", "connected"])
def test_reload_refuses_to_remove_a_node_that_heartbeats_or_is_connected(
        online: SimKernel, where: str) -> None:
    o2net.set_nodes(online.root, **{where: [0, 1]})
    online.write_cluster_conf(ONLY_THIS_NODE)
    before = online.snapshot()
    run = o2cb(online, "reload")
    assert run.exit_code == 1
    assert run.stdout == ""
    assert run.errors == [
        "o2cb: reload: cluster ocfs2: node node2 is no longer in cluster.conf: restart needed"
        " (it heartbeats or is connected: removing it would drop its link and fence)"]
    assert online.snapshot() == before


@pytest.mark.parametrize(("edit", "words"), [
    (lambda sim: sim.write_config(CONFIG.replace("IDLE_TIMEOUT_MS=20000", "IDLE_TIMEOUT_MS=40000")),
     "idle_timeout_ms 20000 -> 40000: restart needed"),
    (lambda sim: sim.write_config(CONFIG.replace("THRESHOLD=21", "THRESHOLD=31")),
     "dead_threshold 21 -> 31: restart needed"),
    (lambda sim: sim.write_cluster_conf(two_node_cluster_conf().replace("10.0.0.2", "10.0.0.9")),
     "node node2 ipv4_address 10.0.0.2 -> 10.0.0.9: restart needed"),
    (lambda sim: sim.write_cluster_conf(two_node_cluster_conf().replace("number = 1",
                                                                        "number = 5")),
     "node node2 num 1 -> 5: restart needed"),
    (lambda sim: sim.write_cluster_conf(two_node_cluster_conf().replace(
        "\tnode_count = 2\n", "\tnode_count = 2\n\theartbeat_mode = global\n")),
     "heartbeat mode local -> global: restart needed"),
    (lambda sim: sim.write_cluster_conf(two_node_cluster_conf().replace(
        "name = node2", "name = node9")),
     "node node9 takes number 1 of running node node2: restart needed"),
], ids=["idle timeout", "threshold", "address", "number", "mode", "renamed node"])
def test_reload_refuses_what_needs_a_restart_and_changes_nothing(
        online: SimKernel, edit: Callable[[SimKernel], None], words: str) -> None:
    edit(online)
    with_node = online.path("/etc/ocfs2/cluster.conf").read_text(encoding="utf-8") + THIRD_NODE
    online.write_cluster_conf(with_node)  # an addition it could apply: refused all the same
    before = online.snapshot()
    run = o2cb(online, "reload")
    assert run.exit_code == 1
    assert len(run.errors) == 1 and words in run.errors[0], run.stderr
    assert "Traceback" not in run.stderr
    assert online.snapshot() == before


def test_reload_on_a_stopped_cluster_is_exit_7(machine: SimKernel) -> None:
    run = o2cb(machine, "reload")
    assert run.exit_code == 7
    assert run.errors == [f"o2cb: reload: cluster {CLUSTER} is not running"]
    assert o2cb(machine, "load").exit_code == 0
    assert o2cb(machine, "reload").exit_code == 7


def test_reload_with_nothing_to_do(online: SimKernel) -> None:
    before = online.snapshot()
    run = o2cb(online, "reload")
    assert run.exit_code == 0
    assert run.lines == [f"Cluster {CLUSTER} already as configured"]
    assert online.snapshot() == before


def test_reload_with_an_invalid_cluster_conf_is_exit_6(online: SimKernel) -> None:
    online.write_cluster_conf("node:\n\tname = node1\n")
    assert o2cb(online, "reload").exit_code == 6


def test_reload_on_pcmk_is_unimplemented(machine: SimKernel) -> None:
    machine.write_config(CONFIG.replace("O2CB_STACK=o2cb", "O2CB_STACK=pcmk"))
    run = o2cb(machine, "reload")
    assert run.exit_code == 3
    assert len(run.errors) == 1 and "cluster stack pcmk" in run.stderr


def test_reload_dry_run_prints_the_plan_and_changes_nothing(online: SimKernel) -> None:
    with_third_node(online)
    before = online.snapshot()
    dry = o2cb(online, "--dry-run", "reload")
    assert dry.exit_code == 0, dry.stderr
    assert dry.lines[0] == f'Adding nodes to O2CB cluster "{CLUSTER}": dry run'
    assert f"  would create directory /sys/kernel/config/cluster/{CLUSTER}/node/node3" in dry.lines
    assert online.snapshot() == before
    real = o2cb(online, "reload")
    assert real.lines == [dry.lines[0].replace("dry run", "OK")]


def test_a_fault_at_each_configfs_write_of_reload_is_undone(online: SimKernel) -> None:
    with_third_node(online)
    before = state(online)
    applied = online.path(APPLIED_FILE).read_text(encoding="utf-8")
    points = fault_points(online, "reload")
    assert points.get("configfs", 0) == 4, points  # mkdir, address, port, num
    after = state(online)
    assert o2cb(online, "stop").exit_code == 0
    for number in range(1, points["configfs"] + 1):
        assert o2cb(online, "start").exit_code == 0  # node3 is in the files now
        online.write_cluster_conf(two_node_cluster_conf())
        assert o2cb(online, "stop").exit_code == 0
        assert o2cb(online, "start").exit_code == 0
        assert state(online) == before
        with_third_node(online)
        run = o2cb_process(online, "reload", fault=f"configfs:{number}:fail")
        what = f"configfs write {number}"
        assert run.exit_code == 1, what
        assert "Traceback" not in run.stderr, what
        assert state(online) == before, what
        assert online.path(APPLIED_FILE).read_text(encoding="utf-8") == applied, what
        retry = o2cb(online, "reload")
        assert retry.exit_code == 0, what
        assert state(online) == after, what
        assert o2cb(online, "stop").exit_code == 0


# -- global heartbeat regions ------------------------------------------------------

pytestmark_global = pytest.mark.skipif(
    shutil.which("mkfs.ocfs2") is None, reason="mkfs.ocfs2 (ocfs2-tools) is not installed")
DISKS = ("/dev/sdc", "/dev/sdd")


@pytest.fixture
def global_online(make_sim: Callable[..., SimKernel],
                  images: list[tuple[Path, str]]) -> SimKernel:  # noqa: F811
    """Online in global mode with the first region only; the second volume attached."""
    sim = make_sim()
    for device, (image, uuid) in zip(DISKS, images, strict=True):
        sim.add_volume(device, uuid, global_heartbeat=True, image=image)
    sim.write_config(CONFIG + NO_DEVICE_WAIT)
    sim.write_cluster_conf(cluster_conf([images[0][1]]))
    run = o2cb(sim, "start")
    assert run.exit_code == 0, run.stderr
    return sim


def regions(sim: SimKernel) -> list[str]:
    return sorted(key.split("/")[2] for key in sim.tree()
                  if key.count("/") == 2 and key.startswith(f"{CLUSTER}/heartbeat/")
                  and sim.tree()[key] == "<dir>")


@pytestmark_global
def test_reload_starts_and_stops_global_regions(
        global_online: SimKernel, images: list[tuple[Path, str]]) -> None:  # noqa: F811
    first, second = (uuid.upper() for _, uuid in images)
    global_online.write_cluster_conf(cluster_conf([first, second]))
    run = o2cb(global_online, "reload")
    assert run.exit_code == 0, run.stderr
    assert regions(global_online) == sorted([first, second])
    global_online.write_cluster_conf(cluster_conf([second]))
    run = o2cb(global_online, "reload")
    assert run.exit_code == 0, run.stderr
    assert regions(global_online) == [second]


@pytestmark_global
def test_reload_never_stops_a_region_under_a_mounted_volume(
        global_online: SimKernel, images: list[tuple[Path, str]]) -> None:  # noqa: F811
    first, second = (uuid.upper() for _, uuid in images)
    global_online.mount_ocfs2_volume(CLUSTER, device=DISKS[0])
    global_online.write_cluster_conf(cluster_conf([second]))
    before = global_online.snapshot()
    run = o2cb(global_online, "reload")
    assert run.exit_code == 1
    assert "an OCFS2 volume is mounted: unmount it, then reload" in run.stderr
    assert global_online.snapshot() == before
    assert regions(global_online) == [first]
