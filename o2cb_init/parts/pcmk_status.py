"""What `status` shows of the pcmk stack's cluster manager: corosync and the lockspaces.

corosync's quorum, cluster name and members (node ids and names), read
through its tools (corosync.py); each lockspace of the kernel's DLM with
the device and mount point of the OCFS2 volume it belongs to, matched by
the UUID in the mounted device's superblock, and the node ids of its
members as dlm_controld gives them to the kernel (one directory per
member under `dlm/cluster/spaces/NAME/nodes/` in configfs).  corosync's
membership and a lockspace's differ: a node whose volume is unmounted is
out of the lockspace while it stays in corosync.
"""

from __future__ import annotations

from .. import corosync
from ..corosync import Quorum
from ..kernel import Kernel
from ..status import StatusReport
from ..system import System
from . import volumes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def corosync_facts(system: System) -> dict[str, Any]:
    state = corosync.quorum(system) if corosync.installed(system) else None
    running = state is not None and state is not Quorum.DOWN
    members = corosync.members(system) if running else []
    return {
        "installed": state is not None,
        "running": running,
        "quorate": state is Quorum.QUORATE,
        "quorum": state.value if state is not None else "not installed",
        "cluster_name": corosync.cluster_name(system) if running else None,
        "members": [{"nodeid": m.nodeid, "name": m.name, "local": m.local} for m in members],
    }


def corosync_lines(facts: dict[str, Any]) -> list[str]:
    named = f', cluster "{facts["cluster_name"]}"' if facts["cluster_name"] else ""
    lines = [f"Checking corosync: {facts['quorum']}{named}"]
    if facts["members"]:
        listed = ", ".join(f"{m['nodeid']} {m['name']}" + (" (local)" if m["local"] else "")
                           for m in facts["members"])
        lines.append(f"corosync members: {listed}")
    return lines


def corosync_status(system: System, report: StatusReport) -> None:
    facts = corosync_facts(system)
    report.facts["corosync"] = facts
    report.lines.extend(corosync_lines(facts))


def lockspace_members(system: System, kernel: Kernel, name: str) -> list[int]:
    """The node ids dlm_controld has made members of lockspace ``name`` (sorted)."""
    nodes = f"{kernel.configfs_mountpoint()}/dlm/cluster/spaces/{name}/nodes"
    if not system.is_dir(nodes):
        return []
    return sorted(int(entry) for entry in system.listdir(nodes) if entry.isdigit())


def lockspace_status(system: System, kernel: Kernel, report: StatusReport) -> None:
    by_name = volumes.volume_of_lockspaces(system, kernel)
    entries = []
    for name in volumes.lockspaces(system):
        device, mountpoint = by_name.get(name, (None, None))
        ocfs2 = bool(volumes.OCFS2_LOCKSPACE.fullmatch(name))
        members = lockspace_members(system, kernel, name)
        entries.append({"name": name, "device": device, "mountpoint": mountpoint,
                        "ocfs2": ocfs2, "members": members})
        if device:
            where = f"{device} on {mountpoint}"
        else:
            where = "an OCFS2 volume not mounted here" if ocfs2 else "not OCFS2"
        if members:
            where += f", members {', '.join(map(str, members))}"
        report.lines.append(f"Lockspace {name}: {where}")
    if not entries:
        report.lines.append("Lockspaces: none")
    report.facts["lockspaces"] = entries
