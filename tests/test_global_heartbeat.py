"""Global heartbeat on the o2cb stack, on the simulated kernel.

The volumes are real OCFS2 images made by mkfs.ocfs2 --global-heartbeat,
attached to the simulated machine as /dev/sdc and /dev/sdd: the region
parameters the tool gives the kernel are read from them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemacheck
from faultbed import files, state
from runs import CONFIG, Run, o2cb, o2cb_process
from simkernel import SimKernel, faults, globalhb, two_node_cluster_conf

from o2cb_init import ocfs2disk
from o2cb_init.parts import drivers
from o2cb_init.parts.o2nm import HEARTBEAT_STILL_ACTIVE
from o2cb_init.system import System

STATUS_SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "doc" / "status.schema.json").read_text())

pytestmark = pytest.mark.skipif(
    shutil.which("mkfs.ocfs2") is None, reason="mkfs.ocfs2 (ocfs2-tools) is not installed"
)

CLUSTER = "ocfs2"
DISKS = ("/dev/sdc", "/dev/sdd")
ABSENT = "0123456789ABCDEF0123456789ABCDEF"
THIRD_NODE = (
    "node:\n\tip_port = 7777\n\tip_address = 10.0.0.3\n\tnumber = 2\n"
    f"\tname = node3\n\tcluster = {CLUSTER}\n\n"
)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    """Two global-heartbeat volumes: (image, UUID)."""
    made = []
    for index in range(2):
        image = tmp_path_factory.mktemp("volumes") / f"vol{index}.img"
        made.append((image, globalhb.make_volume(image, CLUSTER)))
    return made


def cluster_conf(uuids: list[str], extra_nodes: str = "") -> str:
    text = two_node_cluster_conf().replace(
        f"\tname = {CLUSTER}\n", f"\tname = {CLUSTER}\n\theartbeat_mode = global\n"
    )
    text = extra_nodes + text
    if extra_nodes:
        text = text.replace("node_count = 2", "node_count = 3")
    for uuid in uuids:
        text += f"\nheartbeat:\n\tregion = {uuid}\n\tcluster = {CLUSTER}\n"
    return text


@pytest.fixture
def machine(make_sim: Callable[..., SimKernel],
            images: list[tuple[Path, str]]) -> SimKernel:
    """A clean simulated kernel with both volumes attached and a two-region global cluster."""
    sim = make_sim()
    for device, (image, uuid) in zip(DISKS, images, strict=True):
        sim.add_volume(device, uuid, global_heartbeat=True, image=image)
    sim.write_config(CONFIG + NO_DEVICE_WAIT)
    sim.write_cluster_conf(cluster_conf([uuid for _, uuid in images]))
    return sim


def uuids(images: list[tuple[Path, str]]) -> list[str]:
    return [uuid for _, uuid in images]


def running(sim: SimKernel) -> dict[str, dict[str, str]]:
    """Started regions: {uuid: {attribute: value}}."""
    found: dict[str, dict[str, str]] = {}
    prefix = f"{CLUSTER}/heartbeat/"
    for path, value in sim.tree().items():
        rest = path[len(prefix):] if path.startswith(prefix) else ""
        if rest.count("/") == 1:
            uuid, attribute = rest.split("/")
            found.setdefault(uuid, {})[attribute] = value
    return {uuid: attrs for uuid, attrs in found.items() if attrs.get("dev")}


def mount(sim: SimKernel, device: str, where: str = "/mnt/vol") -> None:
    """mount -t ocfs2, which loads the file system's module as mount.ocfs2 does."""
    if "ocfs2" not in sim.modules():
        sim.load("ocfs2")
    sim.path(where).mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "ocfs2", device, str(sim.path(where))],
                          capture_output=True, text=True, env=sim.environment(), check=False)
    assert done.returncode == 0, done.stderr


def umount(sim: SimKernel, where: str = "/mnt/vol") -> None:
    done = subprocess.run(["umount", str(sim.path(where))],
                          capture_output=True, text=True, env=sim.environment(), check=False)
    assert done.returncode == 0, done.stderr


def assert_regions_run(sim: SimKernel, expected: list[str]) -> None:
    regions = running(sim)
    assert sorted(regions) == sorted(expected)
    system = System(root=str(sim.root))
    for uuid in expected:
        disk = ocfs2disk.find_region(system, uuid)
        attributes = regions[uuid]
        assert attributes["dev"] == disk.device.rsplit("/", 1)[-1]
        assert attributes["block_bytes"] == str(disk.block_bytes)
        assert attributes["start_block"] == str(disk.start_block)
        assert attributes["blocks"] == str(disk.blocks)


# The tests of a missing device do not wait for it; the wait has tests of its own.
NO_DEVICE_WAIT = "O2CB_HEARTBEAT_DEVICE_TIMEOUT=0\n"


def assert_heartbeat_start_failed(run: Run, region: str) -> None:
    """Exit 1, the region named in one line on stderr, the reference's Failed line."""
    assert run.exit_code == 1
    assert region in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert f'Starting global heartbeat for cluster "{CLUSTER}": Failed' in run.stdout


# -- start ------------------------------------------------------------------------


def test_start_sets_global_mode_and_starts_every_region(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    run = o2cb_process(machine, "start")
    assert run.exit_code == 0, run.stderr
    assert f'Starting global heartbeat for cluster "{CLUSTER}": OK' in run.stdout.splitlines()
    assert machine.tree()[f"{CLUSTER}/heartbeat/mode"] == "global"
    assert_regions_run(machine, uuids(images))
    assert machine.tree()[f"{CLUSTER}/node/node1/local"] == "1"
    # The kernel now lets a global-heartbeat volume mount.
    mount(machine, DISKS[0])
    status = o2cb(machine, "status")
    assert status.exit_code == 0, status.stdout


def test_a_missing_device_fails_naming_the_region_and_changes_nothing(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    machine.write_cluster_conf(cluster_conf([*uuids(images), ABSENT]))
    before, tree = state(machine), files(machine.root)
    run = o2cb_process(machine, "start")
    assert_heartbeat_start_failed(run, ABSENT)
    assert state(machine) == before
    # Nothing behind, not even the /dlm mount point: every file as it was,
    # but for the run lock every verb that changes the machine takes (on /run).
    lock = {name for name in files(machine.root) if name.startswith("run")}
    left = {name: digest for name, digest in files(machine.root).items() if name not in lock}
    assert left == tree


def test_start_waits_for_a_region_device_then_fails_with_the_whole_run_undone(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    machine.write_config(CONFIG + "O2CB_HEARTBEAT_DEVICE_TIMEOUT=1\n")
    machine.write_cluster_conf(cluster_conf([*uuids(images), ABSENT]))
    before, dlm = state(machine), machine.path("/dlm").exists()
    started = time.monotonic()
    run = o2cb_process(machine, "start")
    assert time.monotonic() - started >= 1.0
    assert_heartbeat_start_failed(run, ABSENT)
    assert "waited 1 s" in run.stderr
    assert state(machine) == before
    assert machine.path("/dlm").exists() == dlm  # the mount point it made is gone too


def test_start_finds_a_region_device_that_appears_while_it_waits(
    make_sim: Callable[..., SimKernel], images: list[tuple[Path, str]]
) -> None:
    sim = make_sim()
    (first, uuid), (late, late_uuid) = images
    sim.add_volume(DISKS[0], uuid, global_heartbeat=True, image=first)
    sim.write_config(CONFIG + "O2CB_HEARTBEAT_DEVICE_TIMEOUT=60\n")
    sim.write_cluster_conf(cluster_conf([uuid, late_uuid]))
    attach = threading.Timer(1.0, sim.add_volume, (DISKS[1], late_uuid),
                             {"global_heartbeat": True, "image": late})
    attach.start()
    try:
        run = o2cb_process(sim, "start")
    finally:
        attach.join()
    assert run.exit_code == 0, run.stderr
    assert_regions_run(sim, [uuid, late_uuid])


def test_a_missing_device_on_a_loaded_kernel_leaves_it_loaded(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    assert o2cb(machine, "load").exit_code == 0
    machine.write_cluster_conf(cluster_conf([ABSENT]))
    before = state(machine)
    run = o2cb_process(machine, "online")
    assert run.exit_code == 1
    assert ABSENT in run.stderr
    assert state(machine) == before
    assert machine.tree().get(f"{CLUSTER}/heartbeat/mode") in (None, "local")


def test_a_dry_run_plans_the_mode_and_the_regions_and_changes_nothing(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    before = machine.snapshot()
    run = o2cb(machine, "--dry-run", "start")
    assert run.exit_code == 0, run.stderr
    heartbeat = f"/sys/kernel/config/cluster/{CLUSTER}/heartbeat"
    assert f"  would write 'global' to {heartbeat}/mode" in run.stdout.splitlines()
    for uuid in uuids(images):
        assert f"  would create directory {heartbeat}/{uuid}" in run.stdout.splitlines()
    assert f'Starting global heartbeat for cluster "{CLUSTER}": dry run' in run.stdout
    assert machine.snapshot() == before


# -- stop -----------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["stop", "offline", "force-offline"])
def test_stop_is_refused_while_a_volume_is_mounted(
    machine: SimKernel, images: list[tuple[Path, str]], verb: str
) -> None:
    assert o2cb(machine, "start").exit_code == 0
    mount(machine, DISKS[1])
    before = state(machine)
    run = o2cb_process(machine, verb)
    assert run.exit_code == 1
    assert HEARTBEAT_STILL_ACTIVE in run.stderr
    assert f'Stopping global heartbeat on cluster "{CLUSTER}": Failed' in run.stdout
    assert state(machine) == before
    assert_regions_run(machine, uuids(images))

    umount(machine)
    run = o2cb_process(machine, "stop")
    assert run.exit_code == 0, run.stderr
    assert f'Stopping global heartbeat on cluster "{CLUSTER}": OK' in run.stdout.splitlines()
    assert machine.tree() == {}
    assert not any(name.startswith("ocfs2") for name in machine.modules())


def test_stop_refused_with_more_regions_than_the_kernel_pins(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    """Above three regions the kernel pins none; the mounted volume still needs them."""
    assert o2cb(machine, "start").exit_code == 0
    for index in range(2):
        machine.start_region(CLUSTER, f"{index:032X}", DISKS[0])
    mount(machine, DISKS[0])
    assert machine.held_regions() == []  # nothing pinned: only our own check protects it
    run = o2cb_process(machine, "stop")
    assert run.exit_code == 1
    assert HEARTBEAT_STILL_ACTIVE in run.stderr
    assert len(running(machine)) == 4


def start_with_a_pin(machine: SimKernel, monkeypatch: pytest.MonkeyPatch, module: str,
                     bound: float) -> None:
    """Start, then hold ``module`` as nothing the tool sees does; unload waits ``bound`` s."""
    monkeypatch.setattr(drivers, "RELEASE_TIMEOUT", bound)
    assert o2cb(machine, "start").exit_code == 0
    machine.pin(module)


def left_loaded(machine: SimKernel) -> list[str] | None:
    """What status --json says the last stop left loaded."""
    facts: dict[str, Any] = json.loads(o2cb(machine, "status", "--json").stdout)
    assert schemacheck.errors(facts, STATUS_SCHEMA) == []
    return facts.get("held_after_stop")


def test_stop_waits_for_a_driver_reference_that_goes_after_the_regions(
    machine: SimKernel, images: list[tuple[Path, str]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    start_with_a_pin(machine, monkeypatch, "ocfs2_nodemanager", 20.0)
    release = threading.Timer(1.0, machine.pin, ("ocfs2_nodemanager", 0))
    release.start()
    try:
        started = time.monotonic()
        run = o2cb(machine, "stop")
    finally:
        release.join()
    assert run.exit_code == 0, run.stderr
    assert 1.0 <= time.monotonic() - started < 20
    assert run.stderr == ""
    assert not any(name.startswith("ocfs2") for name in machine.modules())
    assert left_loaded(machine) is None


def test_a_driver_still_held_after_the_wait_is_named_and_stop_succeeds(
    machine: SimKernel, images: list[tuple[Path, str]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    start_with_a_pin(machine, monkeypatch, "ocfs2_dlm", 1.0)
    started = time.monotonic()
    run = o2cb(machine, "stop")
    assert 1.0 <= time.monotonic() - started < 10
    assert run.exit_code == 0, run.stderr
    assert run.stderr.splitlines() == [
        "o2cb: ocfs2_dlm still in use 1 s after the cluster stopped;"
        " left loaded: ocfs2_dlm, ocfs2_nodemanager"
    ]
    assert f'Stopping global heartbeat on cluster "{CLUSTER}": OK' in run.stdout.splitlines()
    assert machine.tree() == {}
    # ocfs2_dlm keeps what it uses; the stack plugin and the stack glue went.
    assert {"ocfs2_dlm", "ocfs2_nodemanager"} <= set(machine.modules())
    assert not {"ocfs2_stack_o2cb", "ocfs2_stackglue"} & set(machine.modules())
    status = o2cb(machine, "status")
    assert ("Drivers the last stop left loaded: ocfs2_dlm, ocfs2_nodemanager"
            in status.stdout.splitlines())
    assert left_loaded(machine) == ["ocfs2_dlm", "ocfs2_nodemanager"]

    # Once the reference goes, the next stop takes them, and status stops naming them.
    machine.pin("ocfs2_dlm", 0)
    run = o2cb(machine, "stop")
    assert run.exit_code == 0, run.stderr
    assert run.stderr == ""
    assert not any(name.startswith("ocfs2") for name in machine.modules())
    assert left_loaded(machine) is None


@pytest.mark.parametrize("verbs", [("stop", "start"), ("restart",)], ids=" then ".join)
def test_a_start_after_a_stop_that_left_drivers_forgets_them(
    machine: SimKernel, images: list[tuple[Path, str]], monkeypatch: pytest.MonkeyPatch,
    verbs: tuple[str, ...],
) -> None:
    start_with_a_pin(machine, monkeypatch, "ocfs2_nodemanager", 0.2)
    runs = [o2cb(machine, verb) for verb in verbs]
    assert [run.exit_code for run in runs] == [0] * len(verbs), runs[-1].stderr
    assert "ocfs2_nodemanager still in use" in runs[0].stderr
    assert_regions_run(machine, uuids(images))
    assert left_loaded(machine) is None


# -- status --------------------------------------------------------------------------------


def test_status_lists_each_region_with_its_device(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    assert o2cb(machine, "start").exit_code == 0
    run = o2cb(machine, "status")
    assert run.exit_code == 0
    lines = run.stdout.splitlines()
    first, second = uuids(images)
    at = lines.index("Checking O2CB heartbeat: Active")
    assert lines[at - 1] == "  Heartbeat mode: Global"
    assert lines[at + 1:at + 3] == sorted([f"  {first} /dev/sdc", f"  {second} /dev/sdd"])

    facts: dict[str, Any] = json.loads(o2cb(machine, "status", "--json").stdout)
    assert facts["heartbeat_mode"] == "global"
    assert sorted(facts["heartbeat_regions"], key=lambda r: r["uuid"]) == sorted(
        [{"uuid": first, "device": "/dev/sdc"}, {"uuid": second, "device": "/dev/sdd"}],
        key=lambda r: r["uuid"],
    )
    assert {node["name"]: node["local"] for node in facts["nodes"]} == {
        "node1": True, "node2": False,
    }


def test_a_stopped_region_makes_the_cluster_partial(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    assert o2cb(machine, "start").exit_code == 0
    first = uuids(images)[0]
    System(root=str(machine.root)).rmdir(f"/sys/kernel/config/cluster/{CLUSTER}/heartbeat/{first}")
    run = o2cb(machine, "status")
    assert run.exit_code == 1
    assert f"heartbeat region {first}" in run.stdout
    assert o2cb(machine, "online-status").stdout.strip() == "offline"
    # online starts it again without taking the cluster down.
    run = o2cb(machine, "start")
    assert run.exit_code == 0, run.stderr
    assert 'Registering O2CB cluster' not in run.stdout
    assert_regions_run(machine, uuids(images))


# -- re-online ----------------------------------------------------------------------------


def test_online_adds_nodes_and_regions_added_since(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    first, second = uuids(images)
    machine.write_cluster_conf(cluster_conf([first]))
    assert o2cb(machine, "start").exit_code == 0
    mount(machine, DISKS[0])  # a rebuild would be refused now: the cluster must only grow
    machine.write_cluster_conf(cluster_conf([first, second], extra_nodes=THIRD_NODE))
    run = o2cb_process(machine, "online")
    assert run.exit_code == 0, run.stderr
    assert "already online" not in run.stdout
    tree = machine.tree()
    assert (tree[f"{CLUSTER}/node/node3/num"], tree[f"{CLUSTER}/node/node3/ipv4_address"]) == (
        "2", "10.0.0.3",
    )
    assert tree[f"{CLUSTER}/node/node1/local"] == "1"
    assert_regions_run(machine, [first, second])
    assert machine.is_mounted("/mnt/vol")
    assert o2cb(machine, "status").exit_code == 0
    again = o2cb(machine, "online")
    assert again.exit_code == 0
    assert f"Cluster {CLUSTER} already online" in again.stdout


def test_online_in_local_mode_adds_a_node_under_a_mounted_volume(
    make_sim: Callable[..., SimKernel],
) -> None:
    sim = make_sim()
    sim.write_config(CONFIG)
    sim.write_cluster_conf(two_node_cluster_conf())
    assert o2cb(sim, "start").exit_code == 0
    sim.add_heartbeat_region(CLUSTER, ABSENT)  # a mounted volume's region: no rebuild possible
    sim.mount_ocfs2_volume(CLUSTER)
    sim.write_cluster_conf(THIRD_NODE + two_node_cluster_conf().replace(
        "node_count = 2", "node_count = 3"))
    run = o2cb_process(sim, "online")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.splitlines() == [
        'Setting cluster stack "o2cb": OK',
        f'Registering O2CB cluster "{CLUSTER}": OK',
    ]
    assert sim.tree()[f"{CLUSTER}/node/node3/ipv4_address"] == "10.0.0.3"
    assert sim.path(f"{sim.config_mount}/cluster/{CLUSTER}/heartbeat/{ABSENT}").is_dir()
    assert sim.is_mounted("/mnt/vol")
    assert o2cb(sim, "status").exit_code == 0


def test_online_stops_a_region_removed_since(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    first, second = uuids(images)
    assert o2cb(machine, "start").exit_code == 0
    machine.write_cluster_conf(cluster_conf([first]))
    # A region that runs without being configured is no lack: still online.
    assert o2cb(machine, "status").exit_code == 0
    run = o2cb_process(machine, "online")
    assert run.exit_code == 0, run.stderr
    assert run.stderr == ""
    assert run.stdout.splitlines() == [
        'Setting cluster stack "o2cb": OK',
        f'Starting global heartbeat for cluster "{CLUSTER}": OK',
    ]
    assert_regions_run(machine, [first])
    assert not machine.path(
        f"{machine.config_mount}/cluster/{CLUSTER}/heartbeat/{second}").exists()
    assert machine.tree()[f"{CLUSTER}/node/node1/local"] == "1"
    assert o2cb(machine, "status").exit_code == 0
    # The volume of the remaining region still mounts.
    mount(machine, DISKS[0])


@pytest.mark.parametrize("extra_regions", [0, 2], ids=["pinned", "unpinned"])
def test_online_refuses_to_stop_a_removed_region_while_a_volume_is_mounted(
    machine: SimKernel, images: list[tuple[Path, str]], extra_regions: int
) -> None:
    """Refused like the o2cb tool's start-heartbeat, and the nodes added with it taken back.

    Above three regions the kernel pins none, so the refusal is ours alone.
    """
    first, second = uuids(images)
    assert o2cb(machine, "start").exit_code == 0
    extras = [f"{index:032X}" for index in range(extra_regions)]
    for uuid in extras:
        machine.start_region(CLUSTER, uuid, DISKS[0])
    mount(machine, DISKS[1])  # the volume of the region about to be removed
    before = state(machine)
    machine.write_cluster_conf(cluster_conf([first, *extras], extra_nodes=THIRD_NODE))
    run = o2cb_process(machine, "online")
    assert_heartbeat_start_failed(run, second)
    assert state(machine) == before
    assert sorted(running(machine)) == sorted([first, second, *extras])
    assert machine.is_mounted("/mnt/vol")
    umount(machine)
    run = o2cb_process(machine, "online")
    assert run.exit_code == 0, run.stderr
    assert sorted(running(machine)) == sorted([first, *extras])
    assert machine.tree()[f"{CLUSTER}/node/node3/ipv4_address"] == "10.0.0.3"


def test_a_removed_region_that_will_not_stop_restarts_those_stopped_before(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    """A kernel refusal on the second of two removed regions: the first runs again."""
    first, second = uuids(images)
    assert o2cb(machine, "start").exit_code == 0
    before = state(machine)
    machine.write_cluster_conf(cluster_conf([]))
    faults.reset(machine.root)
    counted = o2cb_process(machine, "online", fault="count")
    assert counted.exit_code == 0, counted.stderr
    writes = faults.counts(machine.root)["configfs"]
    assert running(machine) == {}
    assert o2cb(machine, "stop").exit_code == 0
    machine.write_cluster_conf(cluster_conf([first, second]))
    assert o2cb(machine, "start").exit_code == 0
    assert state(machine) == before
    machine.write_cluster_conf(cluster_conf([]))
    faults.reset(machine.root)
    run = o2cb_process(machine, "online", fault=f"configfs:{writes}:fail")
    assert run.exit_code == 1, run.stdout
    assert "in use and cannot be stopped" in run.stderr
    assert "Traceback" not in run.stderr
    assert state(machine) == before
    assert_regions_run(machine, [first, second])


def test_a_failed_re_online_takes_back_only_what_it_added(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    first, _ = uuids(images)
    machine.write_cluster_conf(cluster_conf([first]))
    assert o2cb(machine, "start").exit_code == 0
    before = state(machine)
    machine.write_cluster_conf(cluster_conf([first, ABSENT], extra_nodes=THIRD_NODE))
    run = o2cb_process(machine, "online")
    assert run.exit_code == 1
    assert ABSENT in run.stderr
    assert state(machine) == before


# -- faults ---------------------------------------------------------------------------------


def module_mode(sim: SimKernel) -> str:
    """o2hb's heartbeat mode, which outlives the cluster directory."""
    return globalhb.current_mode(sim._kernel().state)


def test_every_configfs_fault_of_a_global_online_undoes_it(
    machine: SimKernel, images: list[tuple[Path, str]]
) -> None:
    assert o2cb(machine, "load").exit_code == 0
    loaded = state(machine)
    faults.reset(machine.root)
    counted = o2cb_process(machine, "online", fault="count")
    assert counted.exit_code == 0, counted.stderr
    writes = faults.counts(machine.root)["configfs"]
    # cluster, 2 nodes x 4, mode, 4 timeouts, local, 2 regions x (mkdir + 4)
    assert writes == 1 + 8 + 1 + 4 + 1 + 10
    online = state(machine)
    assert o2cb(machine, "stop").exit_code == 0
    assert o2cb(machine, "load").exit_code == 0
    assert state(machine) == loaded
    for number in range(1, writes + 1):
        faults.reset(machine.root)
        run: Run = o2cb_process(machine, "online", fault=f"configfs:{number}:fail")
        assert run.exit_code == 1, f"write {number}: {run.stdout} {run.stderr}"
        assert "Traceback" not in run.stderr
        assert state(machine) == loaded, f"write {number} left changes"
        assert module_mode(machine) == "local", f"write {number} left the global mode"
    assert o2cb(machine, "online").exit_code == 0
    assert state(machine) == online
