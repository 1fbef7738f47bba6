"""Guest side of the two-node pcmk story: real corosync and dlm_controld on both nodes.

The story of twonode_guest's scenario ``pcmk:ours``, played by both nodes
at once: corosync over the guests' network (both nodes in its node list,
two_node mode, the token raised for emulation); our start on both, which
brings dlm_controld up; node a formats a pcmk volume; both mount it and
read each other's files; stop refused on both; b unmounts and stops while a
goes on writing, and a's DLM shows one member left in the volume's
lockspace; b's corosync stopped as an administrator would, a still mounted
and quorate; b back with corosync and our start, reading a's latest file;
both unmount and stop.  The node is left as it was found: both daemons
stopped, the configuration files put back.

It gets twonode_guest's Node and does not import twonode_guest, which runs
as the guest's main script.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from typing import TYPE_CHECKING, Any

try:
    from . import guest
    from . import pcmk_stack_guest as stack
except ImportError:  # run as a script in the guest
    import guest  # type: ignore[no-redef]
    import pcmk_stack_guest as stack  # type: ignore[no-redef]

if TYPE_CHECKING:
    from .twonode_guest import Node

CLUSTER = "ocfs2"
# (name, ring0 address, corosync node id) of vm-a and vm-b, as twonode_guest.NODES names them.
COROSYNC_NODES = [("vm-a", "10.9.9.1", 1), ("vm-b", "10.9.9.2", 2)]
MKFS = "mkfs.ocfs2 -q -F -N 2 -b 4K -C 4K -J size=8M --cluster-stack=pcmk"
# What corosync runs, as its own tool reads it back (the test compares it with the file).
CMAP_KEYS = ("totem.cluster_name", "totem.token", "quorum.two_node")
# Under emulation a pcmk mount (joining the lockspace) and a membership change take
# tens of seconds; the other node waits at the next meeting point meanwhile.
WAIT = 180.0
MEET = 600.0
MOUNT_TIMEOUT = 600.0


def dlm_members(text: str) -> dict[str, list[int]]:
    """`dlm_tool ls`: each lockspace's name -> the node ids of its members."""
    found: dict[str, list[int]] = {}
    name = None
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "name":
            name = words[1]
            found[name] = []
        elif words and words[0] == "members" and name is not None:
            found[name] = [int(word) for word in words[1:] if word.isdigit()]
    return found


def quorum_members(text: str) -> list[int]:
    """`corosync-quorumtool -l`: the node ids listed."""
    return [int(line.split()[0]) for line in text.splitlines() if re.match(r"\s*\d+\s+\d+\s", line)]


def wait_until(node: Node, label: str, check: Any, seconds: float = WAIT) -> bool:
    """Poll ``check()`` every second; note how many seconds it took (None: never)."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if check():
            node.ctx.note(label, round(time.monotonic() - began, 1))
            return True
        time.sleep(1)
    node.ctx.note(label, None)
    return False


def output(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def corosync_facts(node: Node, label: str) -> None:
    """What corosync says: quorum (-s), membership (-l), and the keys it runs."""
    node.ctx.run(f"{label} quorum", ["corosync-quorumtool", "-s"])
    node.ctx.run(f"{label} members", ["corosync-quorumtool", "-l"])
    for key in CMAP_KEYS:
        node.ctx.run(f"{label} {key}", ["corosync-cmapctl", "-g", key])
    node.ctx.run(f"{label} nodelist", ["corosync-cmapctl", "-b", "nodelist"])


def format_volume(node: Node) -> None:
    disk = node.disks[0]
    # mkfs.ocfs2 asks before overwriting another scenario's volume: start from zeros.
    node.ctx.run(
        "wipe",
        ["dd", "if=/dev/zero", f"of={disk}", "bs=1M", "count=2", "oflag=direct", "status=none"],
    )
    node.ctx.run(
        "mkfs", [*MKFS.split(), f"--cluster-name={CLUSTER}", "-L", "o2cbpcmk", disk], timeout=600
    )


def share_leave_and_return(node: Node, global_heartbeat: bool) -> None:
    """The scenario's story (no heartbeat region in pcmk: ``global_heartbeat`` is unused)."""
    with stack.restored_machine():
        corosync = None
        try:
            corosync = play(node)
        finally:
            # Stopped early: nothing may stay mounted when the daemons go.
            for mount in guest.mounts():
                if mount[2] == "ocfs2":
                    guest.quiet(["umount", mount[1]])
            stack.stop_dlm_controld()
            if corosync is not None:
                stack.stop(corosync)
            stack.state(node.ctx, "left")


def play(node: Node) -> Any:
    ctx, a = node.ctx, node.role == "a"
    # Our start waits this long for the dlm_controld it started to build its cluster.
    os.environ["O2CB_DAEMON_TIMEOUT"] = "120"
    stack.prepare_dlm()
    stack.write_pcmk_config(CLUSTER)
    conf = stack.corosync_conf(CLUSTER, COROSYNC_NODES, two_node=True)
    ctx.note("corosync.conf", conf)
    stack.state(ctx, "before")
    node.meet("configured", MEET)
    # two_node implies wait_for_all: quorate only once both nodes are seen.
    corosync = stack.start_corosync(ctx, conf)
    corosync_facts(node, "corosync up")
    node.meet("corosync up", MEET)

    ctx.o2cb("start", label="start")
    stack.state(ctx, "started")
    node.meet("started", MEET)
    if a:
        format_volume(node)
    node.meet("formatted", MEET)
    node.mount(timeout=MOUNT_TIMEOUT)
    node.meet("mounted", MEET)
    node.write(f"from-{node.role}")
    node.meet("written", MEET)
    node.read(f"from-{node.other}")
    ctx.run("dlm_tool ls both", ["dlm_tool", "ls"])
    ctx.o2cb("status", "--json", label="status both")
    stack.state(ctx, "mounted")
    node.meet("read", MEET)

    ctx.o2cb("stop", label="stop while mounted")
    stack.state(ctx, "after refused stop")
    node.meet("refused", MEET)
    if a:
        node.write("a-after-refusal")
    node.meet("a wrote", MEET)

    if not a:
        node.read("a-after-refusal")
        node.umount(timeout=MOUNT_TIMEOUT)
        ctx.o2cb("stop", label="stop")
        stack.state(ctx, "b stopped")
    node.meet("b stopped", MEET)
    if a:
        node.write("a-alone")
        # A's DLM takes B out of the lockspace once its dlm_controld has seen B leave.
        wait_until(
            node,
            "lockspace down to one after",
            lambda: all(len(ids) == 1 for ids in dlm_members(output(["dlm_tool", "ls"])).values()),
        )
        ctx.run("dlm_tool ls alone", ["dlm_tool", "ls"])
        ctx.o2cb("status", "--json", label="status b out")
        corosync_facts(node, "b out")
        stack.state(ctx, "alone")
    node.meet("a alone", MEET)

    if not a:
        stack.stop(corosync)  # as `systemctl stop corosync` does: SIGTERM
        corosync = None
        stack.state(ctx, "b corosync down")
    node.meet("b corosync down", MEET)
    if a:
        wait_until(
            node,
            "membership down to one after",
            lambda: quorum_members(output(["corosync-quorumtool", "-l"])) == [1],
        )
        node.write("a-after-b-down")
        ctx.o2cb("status", "--json", label="status b gone")
        corosync_facts(node, "b gone")
        ctx.run("dlm_tool ls b gone", ["dlm_tool", "ls"])
        stack.state(ctx, "b gone")
    node.meet("a checked", MEET)

    if not a:
        corosync = stack.start_corosync(ctx, conf, label="corosync quorate again after")
        ctx.o2cb("start", label="start again")
        stack.state(ctx, "started again")
        node.mount("mount again", MOUNT_TIMEOUT)
        for name in ("a-after-b-down", "a-alone", "from-a", "from-b"):
            node.read(name)
        ctx.run("dlm_tool ls again", ["dlm_tool", "ls"])
    node.meet("b back", MEET)

    node.umount("umount at end", MOUNT_TIMEOUT)
    node.meet("unmounted", MEET)
    if not a:
        ctx.o2cb("stop", label="stop at end")
        stack.state(ctx, "end")
    node.meet("b down", MEET)
    if a:
        ctx.o2cb("stop", label="stop at end")
        stack.state(ctx, "end")
    node.meet("end", MEET)
    return corosync
