"""A global heartbeat region on a dm-multipath map, on Debian's real kernel.

One OCFS2 image (made here with mkfs.ocfs2 --global-heartbeat) is given to
the guest twice, as two virtio disks with one serial number: two paths of
one LUN.  multipath_guest.py makes the map over both, starts the cluster
with our ``start`` and fails one path with ``dmsetup message ... fail_path``.
The region must run on the map (configfs ``dev`` reads dm-N, status names
/dev/mapper/mpatha), and o2hb must go on writing its heartbeat block past
the dead threshold (7 under emulation: 12 s), with the node not fenced.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from . import harness, multipath_guest
from .harness import Boot

pytestmark = pytest.mark.realkernel

IMAGE_SIZE = 300 << 20


def prepare(workdir: Path) -> list[str]:
    """The LUN's image and the qemu options that show it through two paths."""
    image = workdir / "lun.img"
    with open(image, "wb") as handle:
        handle.truncate(IMAGE_SIZE)
    subprocess.run(
        ["mkfs.ocfs2", "-q", "-F", "-N", "2", "--cluster-stack=o2cb",
         f"--cluster-name={multipath_guest.guest.CLUSTER}", "--global-heartbeat", str(image)],
        check=True, capture_output=True,
    )
    options = []
    for index in range(2):
        options += [
            f"-drive file={image},format=raw,if=none,id=p{index},cache=none,file.locking=off",
            f"-device virtio-blk-pci,drive=p{index},serial={multipath_guest.WWID}",
        ]
    return ["--qemu-opts=" + " ".join(options)]


MULTIPATH = harness.plan(
    "multipath",
    "ours",
    multipath_guest.SCENARIOS,
    fixture="multipath_boot",
    guest_script=Path(multipath_guest.__file__).resolve(),
    prepare=prepare,
)


@pytest.fixture(scope="session")
def multipath_boot(kernel: harness.Kernel, boot_queue: harness.BootQueue) -> Boot:
    return boot_queue.get(kernel, MULTIPATH)


def test_the_region_runs_on_the_map_and_outlives_a_failed_path(multipath_boot: Boot) -> None:
    result = multipath_boot.scenario("multipath:fail-path")
    result.check(not result.record.get("error"), "the scenario stopped")
    notes = result.notes
    result.check(len(notes["paths"]) == 2, f"paths: {notes['paths']}")
    result.check(len(notes["map"]) == 1, f"map: {notes['map']}")
    (map_device,) = notes["map"]
    for path in notes["paths"]:
        result.check(notes["holders"][path] == [map_device], f"holders: {notes['holders']}")
    start = result.step("start")
    result.check(start["rc"] == 0, f"start failed: {start['stderr']}")
    region = notes["region"]
    result.check(region["dev"] == map_device and map_device.startswith("dm-"),
                 f"the region runs on {region['dev']!r}, not on the map {map_device}")
    status = json.loads(result.step("status --json")["stdout"])
    result.check(
        status["heartbeat_regions"] == [{"uuid": notes["uuid"], "device": "/dev/mapper/mpatha"}],
        f"status: {status['heartbeat_regions']}",
    )
    result.check(notes["dead_threshold"] == str(multipath_guest.THRESHOLD),
                 f"dead_threshold {notes['dead_threshold']}")
    failed = result.step("fail_path")
    result.check(failed["rc"] == 0, f"fail_path: {failed['stderr']}")
    result.check(" F " in result.step("dmsetup status")["stdout"] + " ",
                 "dmsetup status shows no failed path")
    samples = notes["samples"]
    seqs = [sample["seq"] for sample in samples]
    result.check(all(isinstance(seq, int) for seq in seqs), f"unreadable heartbeat: {samples}")
    dead_seconds = (multipath_guest.THRESHOLD - 1) * multipath_guest.HEARTBEAT_MS // 1000
    # o2hb stamps each write with the time: the last write came after the
    # dead threshold had passed since the path failed.
    result.check(seqs[-1] - seqs[0] > dead_seconds,
                 f"the heartbeat stopped after fail_path: {samples}")
    result.check(notes["region after"] == {"dev": region["dev"], "pid": region["pid"]},
                 f"the region changed: {notes['region after']}")
    stop = result.step("stop")
    result.check(stop["rc"] == 0, f"stop failed: {stop['stderr']}")


def test_the_global_heartbeat_stop_leaves_the_modules_as_before_start(
    multipath_boot: Boot,
) -> None:
    result = multipath_boot.scenario("multipath:fail-path")
    result.check(not result.record.get("error"), "the scenario stopped")
    stop = result.step("stop")
    result.check(stop["rc"] == 0, f"stop failed: {stop['stderr']}")
    result.check(stop["stderr"] == "", f"stop left something: {stop['stderr']}")
    before, after = result.snap("before start"), result.snap("after stop")
    left = sorted(set(after["modules"]) - set(before["modules"]))
    gone = sorted(set(before["modules"]) - set(after["modules"]))
    result.check(not left and not gone, f"left loaded by start: {left}, gone: {gone}")
    result.check(after["mounts"] == before["mounts"],
                 f"mounts: {before['mounts']} -> {after['mounts']}")
