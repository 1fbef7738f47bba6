"""Guest side of the multipath scenario: a global heartbeat region on a dm-multipath map.

Run in the virtual machine instead of ``guest.py`` (test_multipath.py boots
with this file as the guest script and gives qemu one OCFS2 image twice,
as two virtio disks with one serial number: two paths of one LUN).  The
map over both paths is made with dmsetup, as multipathd would make it: the
guest shares the host's root and has no udev, which multipath(8) needs to
read the paths' WWIDs.  Then our ``start`` runs global heartbeat on the
map, one path is failed, and the region must go on heartbeating past the
dead threshold.
"""

from __future__ import annotations

import mmap
import os
import struct
import sys
import time
from typing import Any

try:
    from . import guest
except ImportError:  # run as a script in the guest
    import guest  # type: ignore[no-redef]

# This tree's package, not whichever one the interpreter has installed: the
# forked verbs and ocfs2disk below import it.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

WWID = "o2cbmpath0"  # the serial both virtio paths report (test_multipath.py)
ALIAS = "mpatha"
THRESHOLD = 7  # o2hb declares a node dead after (7 - 1) * 2 s = 12 s of silence
HEARTBEAT_MS = 2000  # O2HB_REGION_TIMEOUT_MS
WATCH_SECONDS = (THRESHOLD + 3) * HEARTBEAT_MS / 1000
NODE_NUMBER = 0  # the guest's node (virtme-ng) in guest.CLUSTER_CONF


def paths() -> list[str]:
    """The virtio disks whose serial is WWID, by kernel name."""
    found = []
    for name in sorted(os.listdir("/sys/block")):
        if (guest.read(f"/sys/block/{name}/serial") or "").strip() == WWID:
            found.append(name)
    return found


def attribute(path: str) -> str:
    return (guest.read(path) or "").strip()


def heartbeat_seq(device: str, block_bytes: int, start_block: int) -> int | None:
    """hb_seq of this node's heartbeat block (the time of o2hb's last write), read past the cache.

    struct o2hb_disk_heartbeat_block starts with hb_seq, a little-endian
    64-bit count of seconds, which o2hb rewrites every two seconds.
    """
    buffer = mmap.mmap(-1, block_bytes)  # page-aligned, as O_DIRECT needs
    try:
        fd = os.open(device, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        return None
    try:
        os.preadv(fd, [buffer], (start_block + NODE_NUMBER) * block_bytes)
    except OSError:
        return None
    finally:
        os.close(fd)
    (seq,) = struct.unpack_from("<Q", buffer, 0)
    return int(seq)


def write_global_config(uuid: str) -> None:
    text = guest.CLUSTER_CONF.replace(
        f"\tname = {guest.CLUSTER}\n", f"\tname = {guest.CLUSTER}\n\theartbeat_mode = global\n", 1
    )
    text += f"\nheartbeat:\n\tregion = {uuid}\n\tcluster = {guest.CLUSTER}\n"
    with open("/etc/ocfs2/cluster.conf", "w") as handle:
        handle.write(text)
    with open("/etc/default/o2cb", "w") as handle:
        handle.write(guest.sysconfig_text().replace(
            "O2CB_HEARTBEAT_THRESHOLD=21", f"O2CB_HEARTBEAT_THRESHOLD={THRESHOLD}"))


@guest.scenario("multipath:fail-path")
def region_on_the_map_survives_a_failed_path(ctx: guest.Context) -> None:
    # No udev in the guest: the drivers are loaded by hand, and the disks
    # take a moment to appear once virtio_blk has probed them.
    ctx.run("modprobe", ["modprobe", "-a", "virtio_blk", "dm-multipath", "dm-round-robin"])
    deadline = time.monotonic() + 30
    while len(paths()) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    found = paths()
    ctx.note("paths", found)
    if len(found) != 2:
        raise RuntimeError(f"expected two paths with serial {WWID}, found {found}")
    numbers = [attribute(f"/sys/block/{name}/dev") for name in found]
    sectors = attribute(f"/sys/block/{found[0]}/size")
    table = (f"0 {sectors} multipath 0 0 1 1 round-robin 0 2 1 "
             f"{numbers[0]} 1 {numbers[1]} 1")
    ctx.run("dmsetup create", ["dmsetup", "create", ALIAS, "--uuid", f"mpath-{WWID}",
                               "--table", table])
    ctx.run("dmsetup mknodes", ["dmsetup", "mknodes", ALIAS])  # no udev to make /dev/mapper/
    maps = [name for name in os.listdir("/sys/block")
            if attribute(f"/sys/block/{name}/dm/name") == ALIAS]
    ctx.note("map", maps)
    ctx.note("holders", {name: os.listdir(f"/sys/block/{name}/holders") for name in found})
    ctx.note("mapper", sorted(os.listdir("/dev/mapper")))
    from o2cb_init import ocfs2disk

    uuid = ocfs2disk.read_superblock(f"/dev/{maps[0]}").uuid
    ctx.note("uuid", uuid)
    write_global_config(uuid)
    ctx.snap("before start")
    ctx.o2cb("start")
    region = f"{guest.configfs_mountpoint()}/cluster/{guest.CLUSTER}/heartbeat/{uuid}"
    block_bytes = int(attribute(f"{region}/block_bytes") or 512)
    start_block = int(attribute(f"{region}/start_block") or 0)
    ctx.note("region", {key: attribute(f"{region}/{key}")
                        for key in ("dev", "block_bytes", "start_block", "blocks", "pid")})
    ctx.note("dead_threshold", attribute(
        f"{guest.configfs_mountpoint()}/cluster/{guest.CLUSTER}/heartbeat/dead_threshold"))
    ctx.o2cb("status", "--json", label="status --json")
    device = f"/dev/{maps[0]}"
    samples: list[dict[str, Any]] = []

    def sample(when: str) -> None:
        samples.append({"when": when, "clock": int(time.time()),
                        "seq": heartbeat_seq(device, block_bytes, start_block)})

    time.sleep(HEARTBEAT_MS / 1000 * 2)
    sample("before fail_path")
    ctx.run("fail_path", ["dmsetup", "message", ALIAS, "0", f"fail_path {numbers[0]}"])
    ctx.run("dmsetup status", ["dmsetup", "status", ALIAS])
    began = time.monotonic()
    while time.monotonic() - began < WATCH_SECONDS:
        time.sleep(HEARTBEAT_MS / 1000)
        sample(f"{time.monotonic() - began:.0f} s after fail_path")
    ctx.note("samples", samples)
    ctx.note("region after", {key: attribute(f"{region}/{key}") for key in ("dev", "pid")})
    ctx.run("dmsetup status after", ["dmsetup", "status", ALIAS])
    ctx.sh("kernel log", "dmesg | grep -Ei 'o2hb|o2quo|fenc|multipath|device-mapper' | tail -40")
    ctx.o2cb("stop")
    ctx.snap("after stop")
    ctx.run("dmsetup remove", ["dmsetup", "remove", ALIAS])
    ctx.snap("after")


SCENARIOS = [name for name in guest.SCENARIOS if name.startswith("multipath:")]


if __name__ == "__main__":
    sys.exit(guest.main(sys.argv))
