"""Read what global heartbeat needs from an OCFS2 volume, straight from the disk.

A global heartbeat region in configfs (cluster/<name>/heartbeat/<UUID>/) is
described by the volume's heartbeat system file: where it starts and how
many sectors of which size it spans.  This module reads the superblock and
that file with plain reads of the device (no ocfs2-tools needed at boot) and
computes the values the way ocfs2-tools' o2cb tool does:

- ``block_bytes``: the device's logical sector size (512 when it cannot be
  asked, as for an image file);
- ``start_block``: the heartbeat file's first block, counted in sectors;
- ``blocks``: 255, one sector per possible node; a heartbeat file that
  holds fewer blocks is refused.

The on-disk layout is that of the kernel's fs/ocfs2/ocfs2_fs.h; offsets are
little-endian and relative to the start of a block.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from . import blockdev
from .errors import O2cbError
from .system import System

SUPER_BLOCK_BLKNO = 2
BLOCK_SIZES = (512, 1024, 2048, 4096)
MIN_SECTOR_SIZE = 512
MAX_NODES = 255  # O2NM_MAX_NODES: one heartbeat sector per node
BLKSSZGET = 0x1268

SUPER_SIGNATURE = b"OCFSV2"
INODE_SIGNATURE = b"INODE01"
EXTENT_BLOCK_SIGNATURE = b"EXBLK01"

VALID_FL = 0x0001
INLINE_DATA_FL = 0x0001  # in i_dyn_features
INCOMPAT_HEARTBEAT_DEV = 0x0002
INCOMPAT_USERSPACE_STACK = 0x0080
INCOMPAT_CLUSTERINFO = 0x4000
STACKFLAG_GLOBAL_HEARTBEAT = 0x01

# struct ocfs2_dinode
DINODE_FLAGS = struct.Struct("<I")  # i_flags at 0x2C
DINODE_SIZE = struct.Struct("<Q")  # i_size at 0x20
DINODE_DYN_FEATURES = struct.Struct("<H")  # i_dyn_features at 0x76
ID2 = 0xC0
# struct ocfs2_super_block, at ID2: revision, mount counts, state, errors,
# check interval, last check, creator OS (fields 0-8); feature flags (9-11);
# root and system directory, block and cluster size bits, slots (12-16);
# tunefs flag, uuid hash, first cluster group (17-19); label, uuid, and the
# cluster information at 0xA0: stack, stack flags, cluster name (20-24).
SUPER = struct.Struct("<HHHHHHIQIIIIQQIIHHIQ64s16s4sB3x16s")
# struct ocfs2_extent_list header and records
EXTENT_LIST = struct.Struct("<HHH2x8x")
EXTENT_REC = struct.Struct("<IHBBQ")
EXTENT_BLOCK_LIST = 0x30
DIRENT = struct.Struct("<QHBB")

HEARTBEAT_FILE = b"heartbeat"
MAX_TREE_DEPTH = 8
# A system directory holds a few thousand entries at most: a damaged extent
# tree must not make the scan read the whole disk.
MAX_BLOCK_READS = 20000


class DiskError(O2cbError):
    """The device cannot be read, or holds no usable OCFS2 heartbeat."""


@dataclass(frozen=True)
class Superblock:
    label: str
    uuid: str  # 32 upper-case hex digits, as configfs names the region
    block_size: int
    cluster_size: int
    max_slots: int
    feature_compat: int
    feature_incompat: int
    feature_ro_compat: int
    root_blkno: int
    system_dir_blkno: int
    cluster_stack: str | None  # only when the volume carries cluster information
    cluster_name: str | None
    stack_flags: int

    @property
    def global_heartbeat(self) -> bool:
        return self.cluster_stack == "o2cb" and bool(self.stack_flags & STACKFLAG_GLOBAL_HEARTBEAT)

    @property
    def heartbeat_device(self) -> bool:
        """A heartbeat-only device (mkfs.ocfs2 -H): no journals, never mounted."""
        return bool(self.feature_incompat & INCOMPAT_HEARTBEAT_DEV)


@dataclass(frozen=True)
class Region:
    """The attributes of configfs' cluster/<name>/heartbeat/<uuid>/ for one volume."""

    uuid: str
    device: str
    block_bytes: int
    start_block: int
    blocks: int


class Volume:
    """An open device or image, read block by block."""

    def __init__(self, path: str, shown: str | None = None) -> None:
        self.shown = shown or path
        try:
            self.fd = os.open(path, os.O_RDONLY)
        except OSError as error:
            raise DiskError(f"{self.shown}: cannot open: {error.strerror}") from None
        self.block_size = MIN_SECTOR_SIZE
        self.reads = 0

    def __enter__(self) -> Volume:
        return self

    def __exit__(self, *_exc: object) -> None:
        os.close(self.fd)

    def pread(self, offset: int, length: int) -> bytes:
        try:
            data = os.pread(self.fd, length, offset)
        except OSError as error:
            raise DiskError(f"{self.shown}: read failed: {error.strerror}") from None
        except OverflowError:  # a damaged block number far past any device
            data = b""
        if len(data) < length:
            raise DiskError(f"{self.shown}: truncated: nothing to read at byte {offset}")
        return data

    def block(self, blkno: int) -> bytes:
        self.reads += 1
        if self.reads > MAX_BLOCK_READS:
            raise DiskError(f"{self.shown}: corrupt metadata (too many blocks to read)")
        return self.pread(blkno * self.block_size, self.block_size)

    def sector_size(self) -> int:
        """The device's logical sector size; 512 for what is not a block device."""
        if not stat.S_ISBLK(os.fstat(self.fd).st_mode):
            return MIN_SECTOR_SIZE
        buffer = bytearray(4)
        try:
            fcntl.ioctl(self.fd, BLKSSZGET, buffer)
        except OSError:
            return MIN_SECTOR_SIZE
        return int.from_bytes(buffer, "little") or MIN_SECTOR_SIZE

    def superblock(self) -> Superblock:
        for size in BLOCK_SIZES:
            try:
                data = self.pread(SUPER_BLOCK_BLKNO * size, size)
            except DiskError:
                break
            if not data.startswith(SUPER_SIGNATURE):
                continue
            found = parse_superblock(data, size)
            if found is not None:
                self.block_size = size
                return found
        raise DiskError(f"{self.shown}: not an OCFS2 volume (no superblock found)")

    def inode(self, blkno: int, what: str) -> bytes:
        data = self.block(blkno)
        if not data.startswith(INODE_SIGNATURE):
            raise DiskError(f"{self.shown}: {what} at block {blkno} is not an inode")
        (flags,) = DINODE_FLAGS.unpack_from(data, 0x2C)
        if not flags & VALID_FL:
            raise DiskError(f"{self.shown}: {what} at block {blkno} is not a valid inode")
        return data

    def leaf_extents(self, data: bytes, offset: int, depth: int = 0) -> Iterator[tuple[int, int]]:
        """(first block, number of clusters) of each data extent of an extent list."""
        tree_depth, count, used = EXTENT_LIST.unpack_from(data, offset)
        limit = (len(data) - offset - EXTENT_LIST.size) // EXTENT_REC.size
        if used > min(count, limit) or depth > MAX_TREE_DEPTH:
            raise DiskError(f"{self.shown}: corrupt extent list")
        for index in range(used):
            cpos, leaf_clusters, _reserved, _flags, blkno = EXTENT_REC.unpack_from(
                data, offset + EXTENT_LIST.size + index * EXTENT_REC.size
            )
            if tree_depth == 0:
                yield blkno, leaf_clusters
                continue
            child = self.block(blkno)
            if not child.startswith(EXTENT_BLOCK_SIGNATURE):
                raise DiskError(f"{self.shown}: corrupt extent block at {blkno}")
            yield from self.leaf_extents(child, EXTENT_BLOCK_LIST, depth + 1)

    def directory_blocks(self, inode: bytes, cluster_size: int) -> Iterator[bytes]:
        (size,) = DINODE_SIZE.unpack_from(inode, 0x20)
        (dyn,) = DINODE_DYN_FEATURES.unpack_from(inode, 0x76)
        if dyn & INLINE_DATA_FL:
            (count,) = struct.unpack_from("<H", inode, ID2)
            yield inode[ID2 + 8 : ID2 + 8 + min(count, size)]
            return
        per_cluster = cluster_size // self.block_size
        left = size // self.block_size
        for first, clusters in self.leaf_extents(inode, ID2):
            for blkno in range(first, first + clusters * per_cluster):
                if left <= 0:
                    return
                left -= 1
                yield self.block(blkno)

    def lookup(self, directory: int, name: bytes, cluster_size: int) -> int | None:
        """The inode number of ``name`` in the directory whose inode is at ``directory``."""
        inode = self.inode(directory, "the system directory")
        for data in self.directory_blocks(inode, cluster_size):
            offset = 0
            while offset + DIRENT.size <= len(data):
                number, rec_len, name_len, _type = DIRENT.unpack_from(data, offset)
                if rec_len < DIRENT.size or offset + rec_len > len(data):
                    break
                entry = data[offset + DIRENT.size : offset + DIRENT.size + name_len]
                if number and entry == name:
                    return int(number)
                offset += rec_len
        return None


def parse_superblock(data: bytes, block_size: int) -> Superblock | None:
    """The superblock in ``data`` (the block at SUPER_BLOCK_BLKNO), if it is one of that size."""
    fields = SUPER.unpack_from(data, ID2)
    feature_compat, feature_incompat, feature_ro_compat = fields[9:12]
    root_blkno, system_dir_blkno, blocksize_bits, clustersize_bits, max_slots = fields[12:17]
    label, uuid, stack, stack_flags, cluster = fields[20:25]
    if not 9 <= blocksize_bits <= 12 or 1 << blocksize_bits != block_size:
        return None
    if not 12 <= clustersize_bits <= 20:
        return None
    has_info = bool(feature_incompat & (INCOMPAT_CLUSTERINFO | INCOMPAT_USERSPACE_STACK))
    return Superblock(
        label=_text(label),
        uuid=uuid.hex().upper(),
        block_size=block_size,
        cluster_size=1 << clustersize_bits,
        max_slots=max_slots,
        feature_compat=feature_compat,
        feature_incompat=feature_incompat,
        feature_ro_compat=feature_ro_compat,
        root_blkno=root_blkno,
        system_dir_blkno=system_dir_blkno,
        cluster_stack=_text(stack) if has_info else None,
        cluster_name=_text(cluster) if has_info else None,
        stack_flags=stack_flags if has_info else 0,
    )


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def read_superblock(path: str, shown: str | None = None) -> Superblock:
    with Volume(path, shown) as volume:
        return volume.superblock()


def heartbeat_region(path: str, shown: str | None = None) -> Region:
    """The heartbeat region parameters of the OCFS2 volume at ``path``.

    ``shown`` is the name used in messages and returned as the region's
    device (a root-relative /dev path when ``path`` was mapped under a root).
    """
    name = shown or path
    with Volume(path, name) as volume:
        sb = volume.superblock()
        blkno = volume.lookup(sb.system_dir_blkno, HEARTBEAT_FILE, sb.cluster_size)
        if blkno is None:
            raise DiskError(f"{name}: the volume has no heartbeat system file")
        inode = volume.inode(blkno, "the heartbeat file")
        tree_depth, _count, used = EXTENT_LIST.unpack_from(inode, ID2)
        if tree_depth != 0 or used != 1:
            raise DiskError(f"{name}: the heartbeat file is not one contiguous extent")
        _cpos, clusters, _reserved, _flags, first = EXTENT_REC.unpack_from(
            inode, ID2 + EXTENT_LIST.size
        )
        sector = volume.sector_size()
        if sb.block_size < sector:
            raise DiskError(
                f"{name}: block size {sb.block_size} is below the device's sector size {sector}"
            )
        if clusters * sb.cluster_size // sb.block_size < MAX_NODES:
            raise DiskError(f"{name}: the heartbeat file is too small for {MAX_NODES} nodes")
        return Region(
            uuid=sb.uuid,
            device=name,
            block_bytes=sector,
            start_block=first * sb.block_size // sector,
            blocks=MAX_NODES,
        )


# -- finding a volume by its UUID ---------------------------------------------


class DeviceMissing(DiskError):
    """No device fit to carry the region is there yet; it may appear (a login, a map)."""


def block_devices(system: System) -> list[str]:
    """Every block device and partition the kernel lists in /sys/block, as /dev paths."""
    return [device.node for device in blockdev.block_devices(system)]


def carriers(system: System, uuid: str) -> list[blockdev.BlockDevice]:
    """The block devices whose OCFS2 superblock has ``uuid``, in name order.

    Devices that cannot be read (no medium, no permission) or hold no OCFS2
    volume are passed over.
    """
    wanted = uuid.replace("-", "").upper()
    found = []
    for device in blockdev.block_devices(system):
        try:
            sb = read_superblock(str(system.path(device.node)), device.node)
        except DiskError:
            continue
        if sb.uuid == wanted:
            found.append(device)
    return found


def choose_device(
    system: System, uuid: str, carrying: list[blockdev.BlockDevice]
) -> blockdev.BlockDevice:
    """The top of the device stack among ``carrying`` (blockdev says why it must be).

    Raises DeviceMissing when only paths of a map that is not up, or only
    devices held by others, carry the volume, and DiskError when several
    unrelated devices do.
    """
    label = f"heartbeat region {uuid.replace('-', '').upper()}"
    tops = [device for device in carrying if not blockdev.is_held(system, device)]
    if not tops:
        raise DeviceMissing(
            f"{label}: only {_names(carrying)} carry it, and what holds them does not"
        )
    stacked = [device for device in tops if blockdev.is_stacked(system, device)]
    if stacked:
        tops = stacked
    else:
        # A path next to another disk is still a path: the other disk is a
        # copy of the LUN, not the map that will come up over it.
        wwids = sorted({found for found in (blockdev.multipath_wwid(system, device, carrying)
                                            for device in tops) if found})
        if wwids:
            raise DeviceMissing(
                f"{label}: only multipath paths of WWID {wwids[0]} carry it and no multipath"
                " map is up: start multipathd"
            )
    if len(tops) > 1:
        raise DiskError(
            f"{label}: {_names(tops)} all carry it and none is stacked on the others:"
            " which one to heartbeat on is not known"
        )
    return tops[0]


def _names(devices: list[blockdev.BlockDevice]) -> str:
    return ", ".join(device.node for device in devices)


def find_device(system: System, uuid: str) -> str | None:
    """The device (root-relative path, as users know it) holding the volume ``uuid``.

    None when no block device carries it; DiskError (DeviceMissing) when
    the devices that do are not fit for heartbeat I/O.
    """
    found = _top(system, uuid)
    return None if found is None else blockdev.shown_path(system, found.name)


def _top(system: System, uuid: str) -> blockdev.BlockDevice | None:
    carrying = carriers(system, uuid)
    return choose_device(system, uuid, carrying) if carrying else None


def find_region(system: System, uuid: str) -> Region:
    """The heartbeat region of the volume ``uuid``, found among the block devices.

    Its ``device`` is the name users know (/dev/mapper/NAME for a map);
    the volume is read through the kernel's own device file.
    """
    found = _top(system, uuid)
    if found is None:
        raise DeviceMissing(
            f"heartbeat region {uuid.upper()}: no block device holds this volume"
        )
    return heartbeat_region(str(system.path(found.node)), blockdev.shown_path(system, found.name))


POLL_INTERVAL = 0.25  # seconds between two looks at /sys/block while waiting


def wait_for_devices(
    system: System,
    uuids: list[str],
    timeout: float,
    interval: float = POLL_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Region]:
    """The heartbeat region of every volume in ``uuids``, waiting for their devices.

    At boot a region's device may not be there yet: the iSCSI login or
    multipathd's map comes a little after.  The block devices are looked
    at every ``interval`` seconds until each UUID is on a device fit for
    heartbeat I/O or ``timeout`` seconds, one bound for the whole wait,
    have passed (0 looks once).  Then DeviceMissing names every UUID still
    missing, each with its reason, in one line.  A volume that is there but
    cannot carry a region (no heartbeat file, a copy on two disks) fails
    at once: waiting would not change it.
    """
    deadline = clock() + timeout
    found: dict[str, Region] = {}
    while True:
        reasons = []
        for uuid in uuids:
            if uuid in found:
                continue
            try:
                found[uuid] = find_region(system, uuid)
            except DeviceMissing as error:
                reasons.append(error.message)
        if not reasons:
            return {uuid: found[uuid] for uuid in uuids}
        left = deadline - clock()
        if left <= 0:
            raise DeviceMissing(f"{'; '.join(reasons)} (waited {timeout:g} s)")
        sleep(min(interval, left))


__all__ = [
    "DeviceMissing",
    "DiskError",
    "Region",
    "Superblock",
    "block_devices",
    "carriers",
    "choose_device",
    "find_device",
    "find_region",
    "heartbeat_region",
    "read_superblock",
    "wait_for_devices",
]
