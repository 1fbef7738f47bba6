"""Global heartbeat and /dlm holders in the simulated kernel.

Rules of o2hb (fs/ocfs2/cluster/heartbeat.c) and of mount.ocfs2 that
configfs_rules.py and engine.py call into; standard library only, like
engine.py.

- ``heartbeat/mode`` is one value for the whole module: it survives the
  cluster directory and goes back to ``local`` only when
  ocfs2_nodemanager is unloaded.  While any region exists, writing it
  succeeds but changes nothing (o2hb_global_heartbeat_mode_set).
- A region (cluster/<name>/heartbeat/<UUID>/) starts when ``dev`` is written,
  last, as the number of a file descriptor the writer holds open on the
  device: block_bytes (a power of two, 512-4096), start_block and blocks
  (1-255) must all be set before [EINVAL], and none of them can change once
  it runs [EINVAL].  ``dev`` then reads back as the device's name and ``pid``
  as the heartbeat thread's.
- Volumes are registered with :func:`add_volume` (device -> UUID, global
  flag).  Mounting a global-heartbeat volume needs the cluster in global
  mode (else mount.ocfs2's "Heartbeat mode is invalid") and its region
  started (else the kernel refuses: "Global heartbeat not started").  While
  such a volume is mounted, every started region is pinned (the kernel pins
  them while there are at most three): rmdir gives EBUSY.
- A mount point under which a live process holds an open file cannot be
  unmounted: "target is busy" (how a userdlm client keeps /dlm busy).
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path
from typing import Any

MODE_KEY = "heartbeat_mode"
VOLUMES_KEY = "volumes"
REGION_PARAMETERS = ("block_bytes", "start_block", "blocks")
MAX_NODES = 255
PIN_CUT_OFF = 3  # O2HB_PIN_CUT_OFF
FAKE_THREAD_PID = 4242
MOUNT_HINT = "       dmesg(1) may have more information after failed mount system call."


def make_volume(image: Path, cluster: str = "ocfs2") -> str:
    """A 300 MiB global-heartbeat OCFS2 image made by mkfs.ocfs2; its UUID."""
    from o2cb_init import ocfs2disk

    with open(image, "wb") as handle:
        handle.truncate(300 << 20)
    subprocess.run(
        ["mkfs.ocfs2", "-q", "-F", "-N", "2", "--cluster-stack=o2cb",
         f"--cluster-name={cluster}", "--global-heartbeat", str(image)],
        check=True, capture_output=True,
    )
    return ocfs2disk.read_superblock(str(image)).uuid


def _fail(code: int, path: Any) -> OSError:
    return OSError(code, os.strerror(code), str(path))


def _value(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\n")
    except FileNotFoundError:
        return ""


# -- heartbeat mode -------------------------------------------------------------


def current_mode(state: dict[str, Any]) -> str:
    return str(state.get(MODE_KEY, "local"))


def write_mode(state: dict[str, Any], heartbeat_dir: Path, page: str) -> str:
    """The value ``mode`` shows after a write of ``page`` (raises EINVAL when unknown)."""
    mode = (page[:-1] if page.endswith("\n") else page).lower()
    if mode not in ("local", "global"):
        raise _fail(errno.EINVAL, heartbeat_dir / "mode")
    if not any(child.is_dir() for child in heartbeat_dir.iterdir()):
        state[MODE_KEY] = mode
    return current_mode(state)


def forget_mode(state: dict[str, Any]) -> None:
    """ocfs2_nodemanager unloaded: the next load starts in local mode."""
    state.pop(MODE_KEY, None)


# -- regions ----------------------------------------------------------------------


def started(region: Path) -> bool:
    return bool(_value(region / "dev"))


def started_regions(cluster_dir: Path) -> list[str]:
    heartbeat = cluster_dir / "heartbeat"
    if not heartbeat.is_dir():
        return []
    return sorted(p.name for p in heartbeat.iterdir() if p.is_dir() and started(p))


def _number(page: str) -> int | None:
    text = page.strip()
    return int(text) if text.isdigit() else None


def write_region_attribute(region: Path, attribute: str, page: str) -> str | None:
    """Check a write to a region attribute; return what the file then shows."""
    path = region / attribute
    if attribute == "pid":
        raise _fail(errno.EACCES, path)
    if attribute not in (*REGION_PARAMETERS, "dev"):
        return None
    if started(region):
        raise _fail(errno.EINVAL, path)
    number = _number(page)
    if number is None:
        raise _fail(errno.EINVAL, path)
    if attribute == "block_bytes":
        if number < 512 or number > 4096:
            raise _fail(errno.ERANGE, path)
        if number & (number - 1):
            raise _fail(errno.EINVAL, path)
    elif attribute == "blocks" and number > MAX_NODES:
        raise _fail(errno.ERANGE, path)
    elif attribute == "dev":
        if any(_value(region / name) in ("", "0") for name in REGION_PARAMETERS):
            raise _fail(errno.EINVAL, path)
        device = _open_device(number)
        if device is None:
            raise _fail(errno.EINVAL, path)
        (region / "pid").write_text(f"{FAKE_THREAD_PID}\n", encoding="utf-8")
        return device
    return str(number)


def _open_device(fd: int) -> str | None:
    """The name of the device the writer holds open as ``fd`` (the kernel's bdev name)."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    if not target.startswith("/") or not os.path.isfile(target):
        return None  # not a device image (a pipe, a socket, a directory)
    return os.path.basename(target)


def start_region(
    region: Path,
    device: str,
    block_bytes: int = 512,
    start_block: int = 1112,
    blocks: int = MAX_NODES,
) -> None:
    """Make ``region`` a running one without the fd dance (for preparing a state)."""
    for name, value in (
        ("block_bytes", block_bytes),
        ("start_block", start_block),
        ("blocks", blocks),
        ("dev", device.rsplit("/", 1)[-1]),
        ("pid", FAKE_THREAD_PID),
    ):
        (region / name).write_text(f"{value}\n", encoding="utf-8")


# -- volumes and mounts -----------------------------------------------------------


def add_volume(state: dict[str, Any], device: str, uuid: str, global_heartbeat: bool) -> None:
    state.setdefault(VOLUMES_KEY, {})[device] = {
        "uuid": uuid.upper(),
        "global": global_heartbeat,
    }


def volume(state: dict[str, Any], device: str) -> dict[str, Any] | None:
    found = state.get(VOLUMES_KEY, {}).get(device)
    return dict(found) if found else None


def join(state: dict[str, Any], cluster_dir: Path, device: str, mountpoint: str) -> list[str]:
    """Check that a global-heartbeat volume may mount; the regions its mount pins.

    Raises ValueError with mount.ocfs2's message when it may not.
    """
    cluster = cluster_dir.name
    if current_mode(state) != "global":
        raise ValueError("mount.ocfs2: Heartbeat mode is invalid while trying to join the group")
    info = volume(state, device) or {}
    running = started_regions(cluster_dir)
    if info.get("uuid") not in running:
        raise ValueError(
            f"mount.ocfs2: Internal logic failure while mounting {device} on {mountpoint}. "
            "Check 'dmesg' for more information on this error 22."
        )
    if len(running) > PIN_CUT_OFF:
        return []
    return [f"{cluster}/heartbeat/{uuid}" for uuid in running]


def refuse_local_join(state: dict[str, Any]) -> None:
    """A local-heartbeat volume in a cluster in global mode: mount.ocfs2 refuses it."""
    if current_mode(state) == "global":
        raise ValueError("mount.ocfs2: Heartbeat mode is invalid while trying to join the group")


def release(held: list[str], pins: list[str]) -> list[str]:
    """``held`` with one reference of each pin dropped (several mounts may pin a region)."""
    remaining = list(held)
    for pin in pins:
        if pin in remaining:
            remaining.remove(pin)
    return remaining


# -- processes holding files under a mount point -----------------------------------


def holders(target: Path) -> list[int]:
    """Pids of live processes with a file open (or their working directory) under ``target``."""
    prefix = str(target).rstrip("/") + "/"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            links = [f"fd/{fd}" for fd in os.listdir(f"/proc/{entry}/fd")] + ["cwd"]
        except OSError:
            continue
        for link in links:
            try:
                opened = os.readlink(f"/proc/{entry}/{link}")
            except OSError:
                continue
            if (opened + "/").startswith(prefix):
                found.append(int(entry))
                break
    return found
