"""The simulated kernel's global heartbeat and /dlm holders (tests/simkernel/globalhb.py)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from simkernel import SimKernel

from o2cb_init import ocfs2disk
from o2cb_init.system import System

CONFIGFS = "/sys/kernel/config"
CLUSTER = f"{CONFIGFS}/cluster/ocfs2"
HEARTBEAT = f"{CLUSTER}/heartbeat"
UUID = "1C48AD355CB440EABD3A66BC042FCEF2"
OTHER = "0123456789ABCDEF0123456789ABCDEF"
REGION = f"{HEARTBEAT}/{UUID}"


def run(sim: SimKernel, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, env=sim.environment(), check=False
    )


def oserror(call: Callable[[], object]) -> int:
    with pytest.raises(OSError) as caught:
        call()
    assert caught.value.errno is not None
    return caught.value.errno


def online(sim: SimKernel, mode: str | None = "global") -> System:
    """Cluster ocfs2 with this node (node1) local; heartbeat mode set when given."""
    sim.load("ocfs2_stack_o2cb", "ocfs2_dlmfs", "ocfs2")
    sim.mount("configfs", CONFIGFS)
    system = System(root=str(sim.root))
    system.mkdir(CLUSTER)
    node = f"{CLUSTER}/node/node1"
    system.mkdir(node)
    for attribute, value in (("ipv4_address", "127.0.0.1"), ("ipv4_port", "7777"), ("num", "0")):
        system.write_attribute(f"{node}/{attribute}", value)
    system.write_attribute(f"{node}/local", "1")
    if mode:
        system.write_attribute(f"{HEARTBEAT}/mode", mode)
    return system


def start(system: System, sim: SimKernel, region: str, device: str) -> None:
    """Start a region as o2cb does: parameters, then dev as an open descriptor of the device."""
    system.mkdir(region)
    system.write_attribute(f"{region}/block_bytes", "512")
    system.write_attribute(f"{region}/start_block", "1112")
    system.write_attribute(f"{region}/blocks", "255")
    fd = os.open(sim.path(device), os.O_RDONLY)
    try:
        system.write_attribute(f"{region}/dev", str(fd))
    finally:
        os.close(fd)


def mount(sim: SimKernel, device: str, where: str = "/mnt/vol") -> subprocess.CompletedProcess[str]:
    sim.path(where).mkdir(parents=True, exist_ok=True)
    return run(sim, "mount", "-t", "ocfs2", device, str(sim.path(where)))


# -- heartbeat/mode ------------------------------------------------------------------


def test_mode_is_one_value_for_the_module(sim: SimKernel) -> None:
    system = online(sim, mode=None)
    mode = f"{HEARTBEAT}/mode"
    assert sim.tree()["ocfs2/heartbeat/mode"] == "local"
    assert oserror(lambda: system.write_attribute(mode, "disk")) == errno.EINVAL
    system.write_attribute(mode, "GLOBAL")
    assert sim.tree()["ocfs2/heartbeat/mode"] == "global"
    # It outlives the cluster directory...
    system.rmdir(f"{CLUSTER}/node/node1")
    system.rmdir(CLUSTER)
    system.mkdir(CLUSTER)
    assert sim.tree()["ocfs2/heartbeat/mode"] == "global"
    # ...and goes back to local only with the node manager.
    system.rmdir(CLUSTER)
    sim.umount(CONFIGFS)
    sim.unload("ocfs2", "ocfs2_dlmfs", "ocfs2_stack_o2cb")
    assert "ocfs2_nodemanager" not in sim.modules()
    sim.load("ocfs2_stack_o2cb")
    sim.mount("configfs", CONFIGFS)
    system.mkdir(CLUSTER)
    assert sim.tree()["ocfs2/heartbeat/mode"] == "local"


def test_mode_cannot_change_while_a_region_exists(sim: SimKernel) -> None:
    system = online(sim)
    system.mkdir(REGION)
    system.write_attribute(f"{HEARTBEAT}/mode", "local")  # accepted, as by the kernel...
    assert sim.tree()["ocfs2/heartbeat/mode"] == "global"  # ...and ignored
    system.rmdir(REGION)
    system.write_attribute(f"{HEARTBEAT}/mode", "local")
    assert sim.tree()["ocfs2/heartbeat/mode"] == "local"


# -- regions ---------------------------------------------------------------------------


def test_a_region_starts_when_dev_is_written_last(sim: SimKernel) -> None:
    system = online(sim)
    sim.add_volume("/dev/sdc", UUID)
    system.mkdir(REGION)
    fresh = sim.tree()
    assert [fresh[f"ocfs2/heartbeat/{UUID}/{a}"] for a in ("dev", "pid")] == ["", ""]
    fd = os.open(sim.path("/dev/sdc"), os.O_RDONLY)
    try:
        assert oserror(lambda: system.write_attribute(f"{REGION}/dev", str(fd))) == errno.EINVAL
        assert oserror(lambda: system.write_attribute(f"{REGION}/block_bytes", "1000")) == (
            errno.EINVAL
        )
        assert oserror(lambda: system.write_attribute(f"{REGION}/block_bytes", "8192")) == (
            errno.ERANGE
        )
        assert oserror(lambda: system.write_attribute(f"{REGION}/blocks", "256")) == errno.ERANGE
        assert oserror(lambda: system.write_attribute(f"{REGION}/blocks", "x")) == errno.EINVAL
        system.write_attribute(f"{REGION}/block_bytes", "512")
        system.write_attribute(f"{REGION}/start_block", "1112")
        system.write_attribute(f"{REGION}/blocks", "255")
        assert oserror(lambda: system.write_attribute(f"{REGION}/dev", "987")) == errno.EINVAL
        system.write_attribute(f"{REGION}/dev", str(fd))
    finally:
        os.close(fd)
    tree = sim.tree()
    assert tree[f"ocfs2/heartbeat/{UUID}/dev"] == "sdc"
    assert tree[f"ocfs2/heartbeat/{UUID}/pid"].isdigit()
    assert (
        tree[f"ocfs2/heartbeat/{UUID}/start_block"],
        tree[f"ocfs2/heartbeat/{UUID}/blocks"],
    ) == (
        "1112",
        "255",
    )
    # A running region keeps its parameters.
    for attribute in ("block_bytes", "start_block", "blocks", "dev"):
        assert oserror(lambda a=attribute: system.write_attribute(f"{REGION}/{a}", "1")) == (
            errno.EINVAL
        )
    assert oserror(lambda: system.write_attribute(f"{REGION}/pid", "1")) == errno.EACCES
    system.rmdir(REGION)  # nothing mounted: stopping it is allowed
    assert f"ocfs2/heartbeat/{UUID}" not in sim.tree()


def test_a_global_volume_mounts_only_over_its_started_region(sim: SimKernel) -> None:
    system = online(sim, mode="local")
    sim.add_volume("/dev/sdc", UUID)
    refused = mount(sim, "/dev/sdc")
    assert refused.returncode == 1
    assert "Heartbeat mode is invalid" in refused.stderr
    system.write_attribute(f"{HEARTBEAT}/mode", "global")
    refused = mount(sim, "/dev/sdc")
    assert refused.returncode == 1
    assert "Internal logic failure while mounting /dev/sdc" in refused.stderr
    system.mkdir(REGION)  # made but not started
    assert mount(sim, "/dev/sdc").returncode == 1
    system.rmdir(REGION)
    start(system, sim, REGION, "/dev/sdc")
    assert mount(sim, "/dev/sdc").returncode == 0, "started region: the mount goes through"
    assert sim.held_regions() == [f"ocfs2/heartbeat/{UUID}"]


def test_regions_in_use_cannot_be_removed_until_the_last_umount(sim: SimKernel) -> None:
    system = online(sim)
    sim.add_volume("/dev/sdc", UUID)
    sim.add_volume("/dev/sdd", OTHER)
    start(system, sim, REGION, "/dev/sdc")
    start(system, sim, f"{HEARTBEAT}/{OTHER}", "/dev/sdd")
    assert mount(sim, "/dev/sdc", "/mnt/a").returncode == 0
    assert mount(sim, "/dev/sdd", "/mnt/b").returncode == 0
    for region in (REGION, f"{HEARTBEAT}/{OTHER}"):  # every region is pinned
        assert oserror(lambda r=region: system.rmdir(r)) == errno.EBUSY
    assert oserror(lambda: system.rmdir(CLUSTER)) == errno.EBUSY
    assert oserror(lambda: system.rmdir(f"{CLUSTER}/node/node1")) == errno.EBUSY
    assert run(sim, "umount", str(sim.path("/mnt/a"))).returncode == 0
    assert oserror(lambda: system.rmdir(REGION)) == errno.EBUSY  # /mnt/b still holds it
    assert run(sim, "umount", str(sim.path("/mnt/b"))).returncode == 0
    assert sim.held_regions() == []
    system.rmdir(REGION)
    system.rmdir(f"{HEARTBEAT}/{OTHER}")
    # Unlike local heartbeat, umount leaves the regions to whoever started them.
    assert sim.tree()["ocfs2/heartbeat/mode"] == "global"


def test_more_than_three_regions_are_not_pinned(sim: SimKernel) -> None:
    system = online(sim)
    uuids = [f"{n:032X}" for n in range(1, 5)]
    for n, uuid in enumerate(uuids):
        sim.add_volume(f"/dev/sd{'cdef'[n]}", uuid)
        sim.start_region("ocfs2", uuid, f"/dev/sd{'cdef'[n]}")
    assert mount(sim, "/dev/sdc").returncode == 0
    assert sim.held_regions() == []
    system.rmdir(f"{HEARTBEAT}/{uuids[3]}")


def test_local_heartbeat_volumes_are_refused_in_global_mode(sim: SimKernel) -> None:
    online(sim)
    sim.add_volume("/dev/sdb", OTHER, global_heartbeat=False)
    refused = mount(sim, "/dev/sdb")
    assert refused.returncode == 1
    assert "Heartbeat mode is invalid" in refused.stderr
    assert not sim.is_mounted("/mnt/vol")


def test_start_region_helper_and_registered_local_volume(sim: SimKernel) -> None:
    system = online(sim, mode="local")
    sim.add_volume("/dev/sdb", OTHER, global_heartbeat=False)
    assert mount(sim, "/dev/sdb").returncode == 0
    assert sim.held_regions() == [f"ocfs2/heartbeat/{OTHER}"]  # its own UUID, local mode
    assert run(sim, "umount", str(sim.path("/mnt/vol"))).returncode == 0
    system.write_attribute(f"{HEARTBEAT}/mode", "global")
    sim.start_region("ocfs2", UUID, "/dev/sdc", start_block=2304)
    tree = sim.tree()
    assert (tree[f"ocfs2/heartbeat/{UUID}/dev"], tree[f"ocfs2/heartbeat/{UUID}/start_block"]) == (
        "sdc",
        "2304",
    )


def test_add_volume_can_use_a_real_image(sim: SimKernel, tmp_path: Path) -> None:
    image = tmp_path / "vol.img"
    image.write_bytes(b"\0" * 4096)
    node = sim.add_volume("/dev/vdb", UUID, image=image)
    assert node.stat().st_ino == image.stat().st_ino
    with open(node, "rb") as handle:
        assert handle.read(4) == b"\0\0\0\0"


# -- /dlm holders ------------------------------------------------------------------------


def test_a_process_holding_a_lock_under_dlm_keeps_it_mounted(sim: SimKernel) -> None:
    sim.load("ocfs2_stack_o2cb", "ocfs2_dlmfs")
    sim.mount("ocfs2_dlmfs", "/dlm", device="ocfs2_dlmfs")
    with sim.hold_dlm("o2cbtest") as holder:
        assert (sim.path("/dlm/o2cbtest")).is_dir()
        busy = run(sim, "umount", str(sim.path("/dlm")))
        assert (busy.returncode, busy.stderr.strip()) == (
            32,
            f"umount: {sim.path('/dlm')}: target is busy.",
        )
        assert sim.is_mounted("/dlm")
        assert os.readlink(f"/proc/{holder.pid}/fd/3").startswith(str(sim.path("/dlm")))
    assert holder.process.poll() is not None
    assert run(sim, "umount", str(sim.path("/dlm"))).returncode == 0
    assert not sim.is_mounted("/dlm")


def test_hold_dlm_needs_dlmfs_mounted(sim: SimKernel) -> None:
    with pytest.raises(RuntimeError, match="not mounted"):
        sim.hold_dlm()


@pytest.mark.skipif(not shutil.which("mkfs.ocfs2"), reason="mkfs.ocfs2 not installed")
def test_a_volume_made_by_mkfs_is_found_by_its_uuid_under_the_root(
    sim: SimKernel, tmp_path: Path
) -> None:
    image = tmp_path / "global.img"
    with open(image, "wb") as handle:
        handle.truncate(600 << 20)
    subprocess.run(
        [
            "mkfs.ocfs2",
            "-q",
            "-F",
            "-N",
            "4",
            "--global-heartbeat",
            "--cluster-stack=o2cb",
            "--cluster-name=ocfs2",
            str(image),
        ],
        check=True,
        capture_output=True,
    )
    uuid = ocfs2disk.read_superblock(str(image)).uuid
    sim.add_volume("/dev/sdc", OTHER)  # another disk, not OCFS2
    sim.add_volume("/dev/vdb", uuid, image=image)
    region = ocfs2disk.find_region(System(root=str(sim.root)), uuid)
    assert (region.device, region.block_bytes, region.start_block, region.blocks) == (
        "/dev/vdb",
        512,
        1112,
        255,
    )
    system = online(sim)
    start(system, sim, f"{HEARTBEAT}/{uuid}", region.device)
    assert mount(sim, "/dev/vdb").returncode == 0
    assert sim.tree()[f"ocfs2/heartbeat/{uuid}/dev"] == "vdb"
