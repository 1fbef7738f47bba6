"""What keeps the cluster stack up whatever stack is configured: volumes and lockspaces.

A mounted OCFS2 volume needs its stack, whichever stack mounted it and
whether or not this tool started it: /proc/mounts shows it.  A volume's
lockspace in the kernel's DLM (a directory under /sys/kernel/dlm named by
the volume's UUID, 32 upper-case hex digits) shows it too, even where the
mount itself is in another mount namespace.  While either is there, stop,
offline, unload and force-offline refuse before anything changes.

Other lockspaces (lvmlockd's `lvm_*`, GFS2's) are not ours to refuse for,
but they need the dlm module and configfs, as dlm_controld's cluster in
configfs (`dlm/cluster`) does: those stay loaded and mounted.
"""

from __future__ import annotations

import re

from ..errors import O2cbError, StepError
from ..kernel import Kernel
from ..system import System
from .o2nm import HEARTBEAT_STILL_ACTIVE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..context import Steps

DLM_SYSFS = "/sys/kernel/dlm"  # one directory per lockspace, while the dlm module is loaded
OCFS2_LOCKSPACE = re.compile(r"[0-9A-F]{32}")  # ocfs2 names its lockspace by the volume's UUID


def lockspaces(system: System) -> list[str]:
    """The active lockspaces of the kernel's DLM (none when dlm is not loaded)."""
    if not system.is_dir(DLM_SYSFS):
        return []
    return [name for name in system.listdir(DLM_SYSFS) if system.is_dir(f"{DLM_SYSFS}/{name}")]


def in_use_refusal(system: System, kernel: Kernel) -> str | None:
    """Why the stack must stay up: a mounted OCFS2 volume, or an OCFS2 lockspace.

    Where an o2nm heartbeat region runs for it, in the reference's words.
    """
    mounts = kernel.mounts_of_type("ocfs2")
    if mounts and any(target.heartbeat_regions() for target in kernel.configfs().clusters()):
        return HEARTBEAT_STILL_ACTIVE
    for mount in mounts:
        return (f"Unable to stop cluster as OCFS2 volume {mount.device} is still mounted"
                f" on {mount.mountpoint}")
    for name in lockspaces(system):
        if OCFS2_LOCKSPACE.fullmatch(name):
            return (f"Unable to stop cluster as the lockspace {name} of an OCFS2 volume"
                    " is still active")
    return None


def refuse_in_use(system: System, kernel: Kernel, steps: Steps, title: str | None) -> None:
    """The first step of every stop: refused, with the reason, while a volume needs the stack.

    Nothing is shown when nothing needs it.
    """
    reason = in_use_refusal(system, kernel)
    if reason is None:
        return

    def refuse() -> None:
        raise StepError(reason)

    steps.add(title, refuse)


def dlm_keeper(system: System, kernel: Kernel) -> str | None:
    """What still needs the dlm module and configfs: a lockspace, or dlm_controld's cluster."""
    names = lockspaces(system)
    if names:
        return f"lockspace {names[0]} is active"
    if system.is_dir(f"{kernel.configfs_mountpoint()}/dlm/cluster"):
        return "dlm_controld's cluster is in configfs (dlm/cluster)"
    return None


def volume_of_lockspaces(system: System, kernel: Kernel) -> dict[str, tuple[str, str]]:
    """Each mounted OCFS2 volume's lockspace name -> (device, mount point).

    The name is the UUID in the volume's superblock, read from the mounted
    device (ocfs2disk.py); a device that cannot be read is left out.
    """
    from ..ocfs2disk import read_superblock

    found: dict[str, tuple[str, str]] = {}
    for mount in kernel.mounts_of_type("ocfs2"):
        try:
            uuid = read_superblock(system.path(mount.device), mount.device).uuid
        except (OSError, O2cbError) as error:
            system.probe(f"cannot read the UUID of {mount.device}: {error}")
            continue
        found.setdefault(uuid, (mount.device, mount.mountpoint))
    return found
