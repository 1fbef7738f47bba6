"""Which block device carries a heartbeat region: the top of the device stack.

Every device of a stack (the paths of a LUN and the multipath map over
them, partitions and the md array over them, a DRBD device and its backing
disk) is a hard link to one OCFS2 image on the simulated kernel, so they
all read the same superblock, as on a machine.  Only /sys/block tells them
apart, and the choice must not depend on the order of their names.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from faultbed import state
from runs import CONFIG, o2cb, o2cb_process
from simkernel import SimKernel, globalhb, two_node_cluster_conf

from o2cb_init import blockdev, ocfs2disk
from o2cb_init.configfs import HeartbeatRegion
from o2cb_init.system import System

pytestmark = pytest.mark.skipif(
    shutil.which("mkfs.ocfs2") is None, reason="mkfs.ocfs2 (ocfs2-tools) is not installed"
)

WWID = "36001405a1b2c3d4e5f60718293a4b5c6"  # as multipath spells it
SCSI_WWID = "naa.6001405a1b2c3d4e5f60718293a4b5c6"  # as sysfs shows it


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A global-heartbeat OCFS2 image and its UUID."""
    image = tmp_path_factory.mktemp("stack") / "lun.img"
    return image, globalhb.make_volume(image)


@pytest.fixture
def machine(make_sim: Callable[..., SimKernel]) -> SimKernel:
    sim = make_sim()
    sim.add_block_device("sda")  # the system disk: no OCFS2 on it
    return sim


def found(sim: SimKernel, uuid: str) -> str | None:
    return ocfs2disk.find_device(System(root=str(sim.root)), uuid)


def refusal(sim: SimKernel, uuid: str) -> str:
    with pytest.raises(ocfs2disk.DiskError) as caught:
        ocfs2disk.find_device(System(root=str(sim.root)), uuid)
    message = caught.value.message
    assert "\n" not in message
    return message


def assert_order_does_not_matter(sim: SimKernel, uuid: str) -> None:
    """The rule gives the same device for every order of the carriers."""
    system = System(root=str(sim.root))
    carrying = ocfs2disk.carriers(system, uuid)
    assert len(carrying) > 1
    chosen = {ocfs2disk.choose_device(system, uuid, list(order)).name
              for order in itertools.permutations(carrying)}
    assert len(chosen) == 1, chosen


# -- the top of the stack wins ---------------------------------------------------------


@pytest.mark.parametrize("paths", [
    ("sdb", "sdc"),
    ("nvme0n1", "nvme1n1"),
    ("cciss!c0d0", "cciss!c0d1"),  # paths whose names sort before dm-
])
def test_a_multipath_map_wins_over_its_paths(
    machine: SimKernel, volume: tuple[Path, str], paths: tuple[str, ...]
) -> None:
    image, uuid = volume
    machine.add_multipath(WWID, paths, image, path_wwid=SCSI_WWID)
    assert found(machine, uuid) == "/dev/mapper/mpatha"
    assert_order_does_not_matter(machine, uuid)
    region = ocfs2disk.find_region(System(root=str(machine.root)), uuid)
    assert (region.device, region.uuid, region.blocks) == ("/dev/mapper/mpatha", uuid, 255)


def test_a_map_without_its_mapper_file_is_named_by_the_kernel(
    machine: SimKernel, volume: tuple[Path, str]
) -> None:
    image, uuid = volume
    machine.add_multipath(WWID, ("sdb", "sdc"), image)
    machine.path("/dev/mapper/mpatha").unlink()
    assert found(machine, uuid) == "/dev/dm-0"


def test_a_partition_map_on_a_multipath_map_wins_over_the_paths_partitions(
    machine: SimKernel, volume: tuple[Path, str]
) -> None:
    """The volume on mpatha1 (kpartx) while the kernel still shows sdb1 and sdc1."""
    image, uuid = volume
    machine.add_multipath(WWID, ("sdb", "sdc"), None)  # the whole LUN: a partition table
    machine.add_block_device("dm-0", None, holders=("dm-1",), slaves=("sdb", "sdc"),
                             attributes={"dm/name": "mpatha"})
    for path in ("sdb", "sdc"):
        machine.add_block_device(f"{path}1", image, disk=path)
    machine.add_block_device("dm-1", image, slaves=("dm-0",),
                             attributes={"dm/name": "mpatha1"})
    machine.path("/dev/mapper/mpatha1").symlink_to("../dm-1")
    assert found(machine, uuid) == "/dev/mapper/mpatha1"
    assert_order_does_not_matter(machine, uuid)


@pytest.mark.parametrize("disk, part", [
    ("sdb", "sdb1"), ("vda", "vda1"), ("nvme0n1", "nvme0n1p1"),
])
def test_a_partition_is_found(
    machine: SimKernel, volume: tuple[Path, str], disk: str, part: str
) -> None:
    image, uuid = volume
    machine.add_block_device(disk, attributes={"serial": "disk0"})
    machine.add_block_device(part, image, disk=disk)
    assert found(machine, uuid) == f"/dev/{part}"


@pytest.mark.parametrize("name", ["sdb", "vdb", "nvme0n1", "md0", "dm-3"])
def test_a_lone_device_of_every_kind_is_found(
    machine: SimKernel, volume: tuple[Path, str], name: str
) -> None:
    image, uuid = volume
    machine.add_block_device(name, image)
    assert found(machine, uuid) == f"/dev/{name}"


@pytest.mark.parametrize("members", [("sdb1", "sdc1"), ("nvme0n1p1", "nvme1n1p1")])
def test_md_over_partitions_wins_over_its_members(
    machine: SimKernel, volume: tuple[Path, str], members: tuple[str, ...]
) -> None:
    """A RAID1 whose metadata is at the end: each member shows the superblock too."""
    image, uuid = volume
    for member in members:
        disk = member[:-2] if member.startswith("nvme") else member[:-1]
        machine.add_block_device(disk)
        machine.add_block_device(member, image, disk=disk, holders=("md0",))
    machine.add_block_device("md0", image, slaves=members)
    assert found(machine, uuid) == "/dev/md0"
    assert_order_does_not_matter(machine, uuid)


def test_drbd_wins_over_its_backing_disk(machine: SimKernel, volume: tuple[Path, str]) -> None:
    """DRBD links no holders: its backing disk looks free, yet DRBD must carry the I/O."""
    image, uuid = volume
    machine.add_block_device("vdb", image, attributes={"serial": "backing"})
    machine.add_block_device("drbd0", image)
    assert found(machine, uuid) == "/dev/drbd0"
    assert_order_does_not_matter(machine, uuid)


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize("paths, attribute, value, named", [
    (("sdb", "sdc"), "device/wwid", SCSI_WWID, WWID),
    (("sdb",), "device/wwid", SCSI_WWID, WWID),  # one path is enough once multipath knows it
    (("nvme0n1", "nvme1n1"), "wwid", "eui.0025388b71b2c3d4", "eui.0025388b71b2c3d4"),
    (("vdb", "vdc"), "serial", "LUN0", "LUN0"),
])
def test_paths_whose_map_is_not_up_are_refused_naming_the_wwid(
    machine: SimKernel, volume: tuple[Path, str],
    paths: tuple[str, ...], attribute: str, value: str, named: str,
) -> None:
    image, uuid = volume
    for path in paths:
        machine.add_block_device(path, image, attributes={attribute: value})
    machine.path("/etc/multipath").mkdir(parents=True, exist_ok=True)
    machine.path("/etc/multipath/wwids").write_text(f"# Multipath wwids\n/{named}/\n")
    message = refusal(machine, uuid)
    assert message == (
        f"heartbeat region {uuid}: only multipath paths of WWID {named} carry it"
        " and no multipath map is up: start multipathd"
    )


def test_the_map_not_up_from_the_simulated_kernel_is_refused(
    machine: SimKernel, volume: tuple[Path, str]
) -> None:
    image, uuid = volume
    machine.add_multipath(WWID, ("sdb", "sdc"), image, up=False, path_wwid=SCSI_WWID)
    assert f"multipath paths of WWID {WWID}" in refusal(machine, uuid)
    # multipathd makes the map: the same call now finds it.
    machine.add_multipath(WWID, ("sdb", "sdc"), image, path_wwid=SCSI_WWID)
    assert found(machine, uuid) == "/dev/mapper/mpatha"


def test_two_paths_with_one_wwid_are_paths_without_a_wwids_file(
    machine: SimKernel, volume: tuple[Path, str]
) -> None:
    image, uuid = volume
    for path in ("sdc", "sdd"):
        machine.add_block_device(path, image, attributes={"device/wwid": SCSI_WWID})
    with pytest.raises(ocfs2disk.DeviceMissing, match=f"WWID {SCSI_WWID} carry it"):
        ocfs2disk.find_device(System(root=str(machine.root)), uuid)


def test_a_disk_multipath_does_not_know_is_an_ordinary_disk(
    machine: SimKernel, volume: tuple[Path, str]
) -> None:
    image, uuid = volume
    machine.add_multipath("3600140500000000000000000000000ff", ("sdc",), None, up=False)
    machine.add_block_device("sdb", image, attributes={"device/wwid": SCSI_WWID})
    # Another LUN's WWID is listed, sdb's is not: sdb is a plain disk.
    assert found(machine, uuid) == "/dev/sdb"


def test_a_path_whose_map_is_not_up_is_refused_even_beside_another_disk(
    machine: SimKernel, volume: tuple[Path, str]
) -> None:
    """The other disk is a copy of the LUN: heartbeating there would be on the wrong disk."""
    image, uuid = volume
    machine.add_multipath(WWID, ("sdc",), image, up=False)
    machine.add_block_device("sdb", image, attributes={"device/wwid": "naa.60014050000000ff"})
    assert f"multipath paths of WWID {WWID}" in refusal(machine, uuid)
    # Once the map is up it wins over both.
    machine.add_multipath(WWID, ("sdc",), image)
    assert found(machine, uuid) == "/dev/mapper/mpatha"


def test_two_unrelated_devices_with_the_volume_are_refused(
    machine: SimKernel, volume: tuple[Path, str]
) -> None:
    """A copy of the volume on another disk: neither is known to be the right one."""
    image, uuid = volume
    machine.add_block_device("vdb", image, attributes={"serial": "one"})
    machine.add_block_device("vdc", image, attributes={"serial": "two"})
    message = refusal(machine, uuid)
    assert message.startswith(f"heartbeat region {uuid}: /dev/vdb, /dev/vdc all carry it")
    with pytest.raises(ocfs2disk.DiskError) as caught:
        ocfs2disk.find_device(System(root=str(machine.root)), uuid)
    assert not isinstance(caught.value, ocfs2disk.DeviceMissing)


def test_only_held_devices_carrying_it_is_a_missing_device(
    machine: SimKernel, volume: tuple[Path, str]
) -> None:
    """The paths' partitions are there, the map's partition (kpartx) is not yet."""
    image, uuid = volume
    machine.add_multipath(WWID, ("sdb", "sdc"), None)
    for path in ("sdb", "sdc"):
        machine.add_block_device(f"{path}1", image, disk=path)
    with pytest.raises(ocfs2disk.DeviceMissing, match="only /dev/sdb1, /dev/sdc1 carry it"):
        ocfs2disk.find_device(System(root=str(machine.root)), uuid)


def test_no_device_is_none_and_find_region_says_so(machine: SimKernel) -> None:
    assert found(machine, "0" * 32) is None
    with pytest.raises(ocfs2disk.DeviceMissing, match="no block device holds this volume"):
        ocfs2disk.find_region(System(root=str(machine.root)), "0" * 32)


# -- names ---------------------------------------------------------------------------------


def test_multipath_forms_of_scsi_designators() -> None:
    assert blockdev.multipath_forms("naa.600140512") == {"naa.600140512", "3600140512"}
    assert blockdev.multipath_forms("eui.0025388b") == {"eui.0025388b", "20025388b"}
    assert "1ATA_QEMU_HARDDISK_QM00005" in blockdev.multipath_forms(
        "t10.ATA     QEMU HARDDISK   QM00005")
    assert blockdev.multipath_forms("LUN0") == {"LUN0"}


def test_a_running_region_names_a_map_as_users_know_it(
    machine: SimKernel, volume: tuple[Path, str]
) -> None:
    image, _uuid = volume
    machine.add_multipath(WWID, ("sdb", "sdc"), image)
    system = System(root=str(machine.root))
    base = machine.path("/sys/kernel/config/cluster/ocfs2/heartbeat")
    for name, dev in (("A" * 32, "dm-0"), ("B" * 32, "sdb"), ("C" * 32, "")):
        (base / name).mkdir(parents=True)
        (base / name / "dev").write_text(f"{dev}\n")
    def device(name: str) -> str | None:
        return HeartbeatRegion(system, f"/sys/kernel/config/cluster/ocfs2/heartbeat/{name}").device
    assert device("A" * 32) == "/dev/mapper/mpatha"
    assert device("B" * 32) == "/dev/sdb"
    assert device("C" * 32) is None
    assert device("D" * 32) is None


# -- end to end: online with global heartbeat on a multipath map -----------------------


def global_cluster_conf(uuid: str) -> str:
    text = two_node_cluster_conf().replace(
        "\tname = ocfs2\n", "\tname = ocfs2\n\theartbeat_mode = global\n"
    )
    return text + f"\nheartbeat:\n\tregion = {uuid}\n\tcluster = ocfs2\n"


def test_online_starts_the_region_on_the_map_and_status_names_it(
    machine: SimKernel, volume: tuple[Path, str]
) -> None:
    image, uuid = volume
    machine.add_multipath(WWID, ("sdb", "sdc"), image, path_wwid=SCSI_WWID)
    machine.write_config(CONFIG)
    machine.write_cluster_conf(global_cluster_conf(uuid))
    run = o2cb_process(machine, "online")
    assert run.exit_code == 0, run.stderr
    assert machine.tree()[f"ocfs2/heartbeat/{uuid}/dev"] == "dm-0"
    facts = json.loads(o2cb(machine, "status", "--json").stdout)
    assert facts["heartbeat_regions"] == [{"uuid": uuid, "device": "/dev/mapper/mpatha"}]
    assert f"  {uuid} /dev/mapper/mpatha" in o2cb(machine, "status").stdout.splitlines()


def test_online_refuses_paths_whose_map_is_not_up_and_changes_nothing(
    machine: SimKernel, volume: tuple[Path, str]
) -> None:
    image, uuid = volume
    machine.add_multipath(WWID, ("sdb", "sdc"), image, up=False, path_wwid=SCSI_WWID)
    machine.write_config(CONFIG + "O2CB_HEARTBEAT_DEVICE_TIMEOUT=0\n")  # not waited for here
    machine.write_cluster_conf(global_cluster_conf(uuid))
    before = state(machine)
    run = o2cb_process(machine, "online")
    assert run.exit_code == 1
    assert run.stderr.strip().splitlines() == [
        f"heartbeat region {uuid}: only multipath paths of WWID {WWID} carry it"
        " and no multipath map is up: start multipathd (waited 0 s)"
    ]
    assert state(machine) == before


# -- drives of removable media are not read ----------------------------------------------


@contextmanager
def opened_by_a_reader(fifo: Path) -> Iterator[list[bool]]:
    """Watch a FIFO that stands for an empty drive: opening it blocks, as a read
    of an empty floppy drive does for the driver's retries.  A writer opens it
    as soon as a reader waits (which records it) and lets the reader go on."""
    seen: list[bool] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.02):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                continue  # no reader (ENXIO)
            seen.append(True)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


def empty_drive(sim: SimKernel, name: str, attributes: dict[str, str]) -> Path:
    node = sim.add_block_device(name, attributes=attributes)
    node.unlink()
    os.mkfifo(node)
    return node


@pytest.mark.parametrize("name, attributes", [
    ("fd0", {"dev": "2:0", "removable": "0", "size": "5760"}),  # its driver says not removable
    ("sr0", {"dev": "11:0", "removable": "1"}),
])
def test_a_global_heartbeat_start_never_reads_a_drive_of_removable_media(
    machine: SimKernel, volume: tuple[Path, str], name: str, attributes: dict[str, str]
) -> None:
    image, uuid = volume
    drive = empty_drive(machine, name, attributes)
    machine.add_block_device("sdb", image, attributes={"dev": "8:16", "removable": "0"})
    machine.write_config(CONFIG)
    machine.write_cluster_conf(global_cluster_conf(uuid))
    with opened_by_a_reader(drive) as opened:
        run = o2cb_process(machine, "online")
        checked = o2cb_process(machine, "check")
    assert run.exit_code == 0, run.stderr
    assert machine.tree()[f"ocfs2/heartbeat/{uuid}/dev"] == "sdb"
    assert "region" not in checked.stdout + checked.stderr, checked.stdout
    assert opened == [], f"{drive} was opened"
    assert blockdev.removable_media(System(root=str(machine.root)), name)
