"""Heartbeat region parameters read natively from OCFS2 volumes made by mkfs.ocfs2.

Each volume is a sparse image file formatted by ocfs2-tools on this host;
what o2cb_init.ocfs2disk reads is compared with ocfs2-tools' own view of it
(debugfs.ocfs2, mounted.ocfs2) and with what the kernel got from Debian's
o2cb for a 600 MB volume with 4 slots (doc/kernel.md: block_bytes 512,
blocks 255, start_block 1112).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from o2cb_init import ocfs2disk
from o2cb_init.errors import O2cbError
from o2cb_init.system import System

TOOLS = ("mkfs.ocfs2", "debugfs.ocfs2", "mounted.ocfs2")
needs_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in TOOLS) and not os.environ.get("CI"),
    reason="ocfs2-tools not installed (apt-get install ocfs2-tools)",
)


def mkfs(path: Path, size: str, *options: str, global_heartbeat: bool = True) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(parse_size(size))
    argv = ["mkfs.ocfs2", "-q", "-F", *options, "--cluster-stack=o2cb", "--cluster-name=ocfs2"]
    if global_heartbeat:
        argv.append("--global-heartbeat")
    subprocess.run([*argv, str(path)], check=True, capture_output=True)
    return path


def parse_size(size: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(size[:-1]) * units[size[-1]]


def debugfs(path: Path, request: str) -> str:
    proc = subprocess.run(
        ["debugfs.ocfs2", "-R", request, str(path)], capture_output=True, text=True, check=True
    )
    return proc.stdout


def tools_view(path: Path) -> dict[str, object]:
    """What ocfs2-tools report about the volume and its heartbeat file."""
    stats = debugfs(path, "stats")
    heartbeat = debugfs(path, "stat //heartbeat")
    extent = re.search(r"^\s*0\s+0\s+(\d+)\s+(\d+)\s+0x", heartbeat, re.M)
    assert extent, heartbeat
    mounted = (
        subprocess.run(
            ["mounted.ocfs2", "-d", str(path)], capture_output=True, text=True, check=True
        )
        .stdout.splitlines()[1]
        .split()
    )
    return {
        "uuid": re.search(r"UUID: (\w+)", stats).group(1),  # type: ignore[union-attr]
        "label": re.search(r"Label: ?(.*)", stats).group(1).strip(),  # type: ignore[union-attr]
        "block_size": 1 << int(re.search(r"Block Size Bits: (\d+)", stats).group(1)),  # type: ignore[union-attr]
        "cluster_size": 1 << int(re.search(r"Cluster Size Bits: (\d+)", stats).group(1)),  # type: ignore[union-attr]
        "max_slots": int(re.search(r"Max Node Slots: (\d+)", stats).group(1)),  # type: ignore[union-attr]
        "global": "Globalheartbeat" in stats,
        "hb_clusters": int(extent.group(1)),
        "hb_block": int(extent.group(2)),
        "mounted_uuid": next(word for word in mounted if re.fullmatch(r"[0-9A-F]{32}", word)),
        "mounted_flags": mounted[3] if len(mounted) > 3 and len(mounted[3]) == 1 else "",
    }


@needs_tools
def test_600mb_four_slots_gives_what_the_kernel_got_from_the_reference(tmp_path: Path) -> None:
    image = mkfs(tmp_path / "vol.img", "600M", "-N", "4")
    region = ocfs2disk.heartbeat_region(str(image))
    assert (region.block_bytes, region.blocks, region.start_block) == (512, 255, 1112)
    assert region.uuid == tools_view(image)["uuid"]


LAYOUTS = [
    # size, options, global heartbeat
    ("300M", ("-b", "512", "-C", "4K", "-N", "2", "-L", "small"), True),
    ("1G", ("-b", "4K", "-C", "32K", "-N", "8", "-L", "big"), True),
    ("600M", ("-b", "1K", "-C", "8K", "-N", "4"), True),
    ("1G", ("-b", "2K", "-C", "1M", "-N", "16", "-L", "huge-clusters"), True),
    ("400M", ("-b", "4K", "-C", "4K", "-N", "3", "-L", "local-hb"), False),
    ("2G", ("-N", "32", "-J", "size=8M", "-L", "many-slots"), True),
]


@needs_tools
@pytest.mark.parametrize(("size", "options", "global_heartbeat"), LAYOUTS)
def test_superblock_and_region_agree_with_ocfs2_tools(
    tmp_path: Path, size: str, options: tuple[str, ...], global_heartbeat: bool
) -> None:
    image = mkfs(tmp_path / "vol.img", size, *options, global_heartbeat=global_heartbeat)
    tools = tools_view(image)
    sb = ocfs2disk.read_superblock(str(image))
    assert sb.uuid == tools["uuid"] == tools["mounted_uuid"]
    assert sb.label == tools["label"]
    assert sb.block_size == tools["block_size"]
    assert sb.cluster_size == tools["cluster_size"]
    assert sb.max_slots == tools["max_slots"]
    assert sb.global_heartbeat is tools["global"] is global_heartbeat
    assert ("G" in str(tools["mounted_flags"])) is global_heartbeat
    assert (sb.cluster_stack, sb.cluster_name) == ("o2cb", "ocfs2")
    assert not sb.heartbeat_device

    region = ocfs2disk.heartbeat_region(str(image))
    # ocfs2-tools' rule: the heartbeat file's first block, in 512-byte
    # sectors (an image file has no sector size of its own), 255 of them.
    assert region.block_bytes == 512
    assert region.start_block == tools["hb_block"] * sb.block_size // 512
    assert region.blocks == 255
    assert tools["hb_clusters"] * sb.cluster_size >= 255 * sb.block_size
    assert (region.uuid, region.device) == (sb.uuid, str(image))


@needs_tools
def test_local_stack_volume_has_no_cluster_information(tmp_path: Path) -> None:
    image = tmp_path / "local.img"
    with open(image, "wb") as handle:
        handle.truncate(300 << 20)
    subprocess.run(
        ["mkfs.ocfs2", "-q", "-F", "-M", "local", "-N", "1", str(image)],
        check=True,
        capture_output=True,
    )
    sb = ocfs2disk.read_superblock(str(image))
    assert (sb.cluster_stack, sb.cluster_name, sb.global_heartbeat) == (None, None, False)


# -- not an OCFS2 volume, or a damaged one --------------------------------------


def test_empty_device_is_not_an_ocfs2_volume(tmp_path: Path) -> None:
    image = tmp_path / "zero.img"
    image.write_bytes(bytes(1 << 20))
    with pytest.raises(ocfs2disk.DiskError, match="zero.img: not an OCFS2 volume"):
        ocfs2disk.heartbeat_region(str(image))


def test_short_device_is_not_an_ocfs2_volume(tmp_path: Path) -> None:
    image = tmp_path / "short.img"
    image.write_bytes(b"OCFSV2")
    with pytest.raises(ocfs2disk.DiskError, match="not an OCFS2 volume"):
        ocfs2disk.read_superblock(str(image))


def test_missing_device_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ocfs2disk.DiskError, match="nothing.img: cannot open: No such file"):
        ocfs2disk.read_superblock(str(tmp_path / "nothing.img"))


def test_disk_error_is_an_o2cb_error_with_failure_exit() -> None:
    assert issubclass(ocfs2disk.DiskError, O2cbError)
    assert ocfs2disk.DiskError("x").exit_code == 1


PREFIX = 1 << 20  # mkfs.ocfs2 puts the metadata read here within the first MB


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[int]]:
    """The first MB of a small global-heartbeat volume, and the blocks the reader uses."""
    if not shutil.which("mkfs.ocfs2"):
        pytest.skip("mkfs.ocfs2 not installed")
    folder = tmp_path_factory.mktemp("vol")
    image = mkfs(folder / "vol.img", "300M", "-b", "1K", "-C", "4K", "-N", "2")
    with open(image, "rb") as handle:
        prefix = handle.read(PREFIX)
    (folder / "prefix.img").write_bytes(prefix)
    used: list[int] = []

    class Recording(ocfs2disk.Volume):
        def block(self, blkno: int) -> bytes:
            used.append(blkno)
            return super().block(blkno)

    with Recording(str(folder / "prefix.img")) as volume:
        sb = volume.superblock()
        blkno = volume.lookup(sb.system_dir_blkno, b"heartbeat", sb.cluster_size)
        assert blkno is not None
        volume.inode(blkno, "heartbeat")
    assert sb.block_size == 1024 and max(used) < PREFIX // 1024
    return prefix, [2, *used]


def test_truncated_volume_is_one_clear_error(
    tmp_path: Path, pristine: tuple[bytes, list[int]]
) -> None:
    prefix, used = pristine
    image = tmp_path / "cut.img"
    image.write_bytes(prefix[: max(used) * 1024])
    with pytest.raises(ocfs2disk.DiskError, match="cut.img: truncated"):
        ocfs2disk.heartbeat_region(str(image))


def test_damaged_heartbeat_inode_is_one_clear_error(
    tmp_path: Path, pristine: tuple[bytes, list[int]]
) -> None:
    prefix, used = pristine
    image = tmp_path / "vol.img"
    image.write_bytes(prefix)
    assert ocfs2disk.heartbeat_region(str(image)).blocks == 255
    data = bytearray(prefix)
    data[used[-1] * 1024 : used[-1] * 1024 + 7] = b"GARBAGE"
    image.write_bytes(bytes(data))
    with pytest.raises(ocfs2disk.DiskError, match="heartbeat file at block .* is not an inode"):
        ocfs2disk.heartbeat_region(str(image))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.integers(0, 63), st.integers(0, 1023), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    )
)
def test_any_damage_to_the_metadata_gives_a_region_or_one_disk_error(
    tmp_path: Path, pristine: tuple[bytes, list[int]], damage: list[tuple[int, int, int]]
) -> None:
    prefix, used = pristine
    data = bytearray(prefix)
    for which, offset, value in damage:
        data[used[which % len(used)] * 1024 + offset] = value
    image = tmp_path / "damaged.img"
    image.write_bytes(bytes(data))
    try:
        region = ocfs2disk.heartbeat_region(str(image))
    except ocfs2disk.DiskError as error:
        assert "\n" not in error.message and error.message.startswith(str(image))
    else:
        assert region.blocks == 255 and region.block_bytes == 512


# -- finding the device of a region ---------------------------------------------


def fake_block_device(
    root: Path, name: str, image: Path | None, *, parent: str | None = None, sectors: int = 2048
) -> None:
    sysdir = root / "sys/block" / (f"{parent}/{name}" if parent else name)
    sysdir.mkdir(parents=True)
    (sysdir / "size").write_text(f"{sectors}\n")
    if parent:
        (sysdir / "partition").write_text("1\n")
    device = root / "dev" / name.replace("!", "/")
    device.parent.mkdir(parents=True, exist_ok=True)
    if image is not None:
        device.symlink_to(image)


@needs_tools
def test_find_device_scans_disks_and_partitions_under_root(tmp_path: Path) -> None:
    volumes = tmp_path / "volumes"
    volumes.mkdir()
    first = mkfs(volumes / "a.img", "300M", "-N", "2")
    second = mkfs(volumes / "b.img", "300M", "-N", "2")
    root = tmp_path / "root"
    fake_block_device(root, "sda", None)  # a disk with no readable device node
    fake_block_device(root, "loop0", None, sectors=0)  # an unused loop device
    fake_block_device(root, "vda", first)
    fake_block_device(root, "vdb", None)
    fake_block_device(root, "vdb1", second, parent="vdb")
    fake_block_device(root, "cciss!c0d0", blank_image(tmp_path, 1 << 20))
    system = System(root=str(root))
    assert ocfs2disk.block_devices(system) == [
        "/dev/cciss/c0d0",
        "/dev/sda",
        "/dev/vda",
        "/dev/vdb",
        "/dev/vdb1",
    ]
    uuid_a = ocfs2disk.read_superblock(str(first)).uuid
    uuid_b = ocfs2disk.read_superblock(str(second)).uuid
    assert ocfs2disk.find_device(system, uuid_a) == "/dev/vda"
    assert ocfs2disk.find_device(system, uuid_b.lower()) == "/dev/vdb1"
    assert ocfs2disk.find_device(system, "0" * 32) is None
    region = ocfs2disk.find_region(system, uuid_b)
    assert (region.device, region.uuid, region.blocks) == ("/dev/vdb1", uuid_b, 255)
    with pytest.raises(ocfs2disk.DiskError, match=f"region {'0' * 32}: no block device holds"):
        ocfs2disk.find_region(system, "0" * 32)


def blank_image(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "blank.img"
    path.write_bytes(bytes(size))
    return path
