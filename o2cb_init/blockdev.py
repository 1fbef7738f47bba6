"""Block devices as /sys/block shows them, and which one of a stack carries a volume.

On shared storage one volume is seen through several block devices at
once: each path of a LUN (sdb, sdc) and the dm-multipath map over them
(dm-0), the partitions of a disk and the md array over them, the backing
disk of a DRBD device and the DRBD device itself.  All of them may read
the same superblock.  A global heartbeat region must run on the top of
that stack, the device that nothing else holds: heartbeat I/O sent
through one path of a map dies with that path, the node stops writing
its heartbeat, and the others fence it (or it fences itself) although
the storage was still reachable through the other paths.  So the choice
is a rule here, not the order of names:

- a device that another one holds (its ``holders/`` lists the map, the
  array) is never chosen, nor a partition of such a disk;
- of the devices left, one that is stacked on others (dm and md list
  them in ``slaves/``; DRBD links neither holders nor slaves, so it is
  known by its name) goes before the others, as a DRBD device goes before
  its backing disk;
- otherwise, a device whose WWID multipath knows (listed in
  /etc/multipath/wwids, or shared by two devices) is a path of a map that
  is not up: heartbeating on it would be the single-path case above, so
  the volume is refused until multipathd has made the map, even when
  another disk (a copy of the LUN) carries it too.

Drives of removable media are not scanned at all: a floppy drive (its
driver does not mark it removable, so it is known by its major number)
or a CD-ROM is never shared storage, and a read of an empty floppy drive
fails only after the driver's retries, seconds at each scan.

Every path is root-relative and read through the System seam, so that
--root trees and the simulated kernel answer as the machine would.
"""

from __future__ import annotations

import re

from .records import dataclass
from .system import System

SYS_BLOCK = "/sys/block"
MULTIPATH_WWIDS = "/etc/multipath/wwids"
FLOPPY_MAJOR = "2"


@dataclass(frozen=True)
class BlockDevice:
    """A disk (/sys/block/sdb) or a partition (/sys/block/sdb/sdb1)."""

    name: str  # as the kernel names it: '!' stands for '/' (cciss!c0d0)
    disk: str  # the whole disk: the name itself unless a partition

    @property
    def partition(self) -> bool:
        return self.name != self.disk

    @property
    def sysdir(self) -> str:
        base = f"{SYS_BLOCK}/{self.disk}"
        return f"{base}/{self.name}" if self.partition else base

    @property
    def node(self) -> str:
        """The device file the kernel's name gives, /dev/sdb1, /dev/cciss/c0d0."""
        return "/dev/" + self.name.replace("!", "/")


def block_devices(system: System) -> list[BlockDevice]:
    """Every disk and partition with a size that /sys/block lists, in name order,
    but for drives of removable media."""
    found = []
    for disk in system.listdir(SYS_BLOCK):
        if removable_media(system, disk):
            continue
        if _size(system, f"{SYS_BLOCK}/{disk}") > 0:
            found.append(BlockDevice(disk, disk))
        for part in system.listdir(f"{SYS_BLOCK}/{disk}"):
            base = f"{SYS_BLOCK}/{disk}/{part}"
            if system.exists(f"{base}/partition") and _size(system, base) > 0:
                found.append(BlockDevice(part, disk))
    return found


def removable_media(system: System, disk: str) -> bool:
    """A floppy drive (major 2) or a drive the kernel marks removable (CD-ROM, card reader)."""
    base = f"{SYS_BLOCK}/{disk}"
    if system.read_attribute(f"{base}/removable") == "1":
        return True
    return (system.read_attribute(f"{base}/dev") or "").partition(":")[0] == FLOPPY_MAJOR


def _size(system: System, sysdir: str) -> int:
    value = system.read_attribute(f"{sysdir}/size")
    try:
        return int(value or 0)
    except ValueError:
        return 0


def holders(system: System, device: BlockDevice) -> list[str]:
    """The devices stacked on this one (a map on its path, an array on its member)."""
    return system.listdir(f"{device.sysdir}/holders")


def is_held(system: System, device: BlockDevice) -> bool:
    """Held by another device, or a partition of a disk that is (a path's partition)."""
    if holders(system, device):
        return True
    return device.partition and bool(system.listdir(f"{SYS_BLOCK}/{device.disk}/holders"))


def is_stacked(system: System, device: BlockDevice) -> bool:
    """A device made of others: dm and md (``slaves/``), DRBD (by name)."""
    if device.disk.startswith("drbd"):
        return True
    return bool(system.listdir(f"{SYS_BLOCK}/{device.disk}/slaves"))


def wwid(system: System, device: BlockDevice) -> str | None:
    """The disk's world-wide identifier as sysfs shows it (SCSI, nvme, virtio serial)."""
    base = f"{SYS_BLOCK}/{device.disk}"
    for attribute in ("device/wwid", "wwid", "serial"):
        value = system.read_attribute(f"{base}/{attribute}")
        if value:
            return value
    return None


def multipath_forms(sysfs_wwid: str) -> set[str]:
    """The ways multipath may spell a sysfs WWID in /etc/multipath/wwids and dm uuids.

    multipath takes udev's identifier, which writes SCSI name designators
    as a digit: naa.6001405... is 36001405..., eui. is 2, t10. is 1 (with
    blanks as '_'); nvme and virtio identifiers are taken as they are.
    """
    forms = {sysfs_wwid}
    prefix, _, rest = sysfs_wwid.partition(".")
    digit = {"naa": "3", "eui": "2", "t10": "1"}.get(prefix)
    if digit and rest:
        forms.add(digit + (re.sub(r"\s+", "_", rest.strip()) if prefix == "t10" else rest))
    return forms


def known_wwids(system: System) -> set[str]:
    """The WWIDs multipath has made maps for on this machine (/etc/multipath/wwids)."""
    text = system.read_optional(MULTIPATH_WWIDS) or ""
    found = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            found.add(line.strip("/"))
    return found


def multipath_wwid(system: System, device: BlockDevice, others: list[BlockDevice]) -> str | None:
    """The WWID under which multipath knows ``device``, if it is a path of a map.

    A path is known by its WWID in /etc/multipath/wwids, or by another of
    ``others`` (a different disk) reporting the same WWID.
    """
    own = wwid(system, device)
    if own is None or is_stacked(system, device):
        return None
    listed = multipath_forms(own) & known_wwids(system)
    if listed:
        return sorted(listed)[0]
    for other in others:
        if other.disk != device.disk and not is_stacked(system, other) and (
            wwid(system, other) == own
        ):
            return own
    return None


def shown_path(system: System, name: str) -> str:
    """The device file users know for the kernel's device ``name``.

    A device-mapper device is /dev/mapper/NAME (its dm/name) when that file
    exists; any other device is /dev/ followed by the kernel's name.
    """
    node = "/dev/" + name.replace("!", "/")
    if name.startswith("dm-"):
        mapped = system.read_attribute(f"{SYS_BLOCK}/{name}/dm/name")
        if mapped and "/" not in mapped and system.exists(f"/dev/mapper/{mapped}"):
            return f"/dev/mapper/{mapped}"
    return node


__all__ = [
    "BlockDevice",
    "block_devices",
    "holders",
    "is_held",
    "is_stacked",
    "known_wwids",
    "multipath_forms",
    "multipath_wwid",
    "removable_media",
    "shown_path",
    "wwid",
]
