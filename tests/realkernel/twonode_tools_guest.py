"""Guest side of the two-node stories of the administrator's tools: reload and check.

Each story is played by both nodes at once (see twonode_guest.py, which runs
as the guest's __main__ and hands each story its Node).  The set-up steps both
modules need (formatting the shared disks, configuring global heartbeat with
ocfs2-tools' o2cb tool) are given to ``Stories`` by twonode_guest.py, so this
module never imports it.

- ``reload_under_mount``: global heartbeat, both mounted; a third node (vm-c,
  never booted) is added to cluster.conf on both nodes and ``reload`` (after a
  ``--dry-run``) adds it to the running cluster under the mounted volume; the
  same node is then removed again, and reload removes it.  I/O goes on across.
- ``differing_timeouts``: B runs with another idle timeout; in global mode B
  heartbeats without a mount, o2net refuses the connection, and ``status``
  and ``check`` on both nodes say so, check with the kernel's reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

try:
    from . import guest
except ImportError:  # run as a script in the guest
    import guest  # type: ignore[no-redef]

if TYPE_CHECKING:
    from .twonode_guest import Node

CLUSTER = "ocfs2"
THIRD = ("vm-c", "10.9.9.3", 2)  # a node in cluster.conf that never boots
SYSCONFIG = "/etc/default/o2cb"
IDLE_TIMEOUT_OF_B = 40000  # A keeps the bed's 30000
LIVE_NODES = "/sys/kernel/debug/o2hb/livenodes"
REFUSAL = "uses a network idle timeout of"
REFUSAL_WAIT = 150.0  # B tries again about every 40 s (doc/kernel-measurements.md)


def kernel_log() -> list[str]:
    from o2cb_init import kernellog
    from o2cb_init.system import System

    return kernellog.messages(System()) or []


class Stories:
    """The stories, with the set-up steps they share with twonode_guest.py."""

    def __init__(
        self,
        format_disks: Callable[[Node, bool], None],
        configure_global: Callable[[Node], None],
        o2cb_tool: Callable[[], str],
    ) -> None:
        self.format_disks = format_disks
        self.configure_global = configure_global
        self.o2cb_tool = o2cb_tool

    def _global_cluster(self, node: Node) -> None:
        """Node a formats both disks; both nodes configure both regions."""
        if node.role == "a":
            self.format_disks(node, True)
        node.meet("formatted")
        self.configure_global(node)

    def _start(self, node: Node) -> None:
        node.ctx.snap("before")
        node.ctx.o2cb("start", label="start")
        node.ctx.snap("started")

    def _stop_both(self, node: Node) -> None:
        """The higher node number leaves first: o2quo favours the lowest."""
        if node.role == "b":
            node.ctx.o2cb("stop", label="stop at end")
            node.ctx.snap("end")
        node.meet("b down")
        if node.role == "a":
            node.ctx.o2cb("stop", label="stop at end")
            node.ctx.snap("end")

    def reload_under_mount(self, node: Node, global_heartbeat: bool) -> None:
        ctx, tool = node.ctx, self.o2cb_tool()
        self._global_cluster(node)
        self._start(node)
        node.meet("started")
        node.mount()
        node.meet("mounted")
        node.write(f"before-reload-{node.role}")
        node.meet("written")
        node.read(f"before-reload-{node.other}")
        name, address, number = THIRD
        ctx.run(
            "add-node",
            [
                tool,
                "add-node",
                CLUSTER,
                name,
                "--ip",
                address,
                "--port",
                "7777",
                "--number",
                str(number),
            ],
        )
        ctx.o2cb("status", label="status pending")
        ctx.o2cb("--dry-run", "reload", label="reload dry-run")
        ctx.snap("after dry run")
        ctx.o2cb("reload", label="reload")
        ctx.snap("reloaded")
        node.meet("reloaded")
        node.write(f"after-reload-{node.role}")
        node.meet("written after reload")
        node.read(f"after-reload-{node.other}")
        ctx.o2cb("status", "--json", label="status json after reload")
        node.meet("checked")
        # The node leaves the files again; it never heartbeated, so reload removes it.
        ctx.run("remove-node", [tool, "remove-node", CLUSTER, name])
        ctx.o2cb("reload", label="reload removal")
        ctx.snap("removed")
        node.meet("removed")
        node.write(f"after-removal-{node.role}")
        node.meet("written after removal")
        node.read(f"after-removal-{node.other}")
        node.umount("umount at end")
        node.meet("unmounted")
        self._stop_both(node)

    def differing_timeouts(self, node: Node, global_heartbeat: bool) -> None:
        ctx = node.ctx
        self._global_cluster(node)
        with open(SYSCONFIG) as handle:
            sysconfig = handle.read()
        try:
            if node.role == "b":
                with open(SYSCONFIG, "w") as handle:
                    handle.write(
                        sysconfig.replace(
                            "O2CB_IDLE_TIMEOUT_MS=30000",
                            f"O2CB_IDLE_TIMEOUT_MS={IDLE_TIMEOUT_OF_B}",
                        )
                    )
            ctx.note("dmesg_restrict", guest.read("/proc/sys/kernel/dmesg_restrict"))
            self._start(node)
            node.meet("started")
            wait_for_refusal(node)
            node.meet("refused")
            ctx.snap("refused")
            ctx.o2cb("status", "--json", label="status json")
            ctx.o2cb("check", label="check")
            ctx.o2cb("check", "--json", label="check json")
            node.meet("checked")
            self._stop_both(node)
        finally:
            with open(SYSCONFIG, "w") as handle:
                handle.write(sysconfig)


def wait_for_refusal(node: Node) -> None:
    """Wait until both nodes heartbeat here and the kernel has logged o2net's refusal."""
    started = time.monotonic()
    live: list[str] = []
    while time.monotonic() - started < REFUSAL_WAIT:
        live = (guest.read(LIVE_NODES) or "").split()
        if {"0", "1"} <= set(live) and any(REFUSAL in line for line in kernel_log()):
            break
        time.sleep(1)
    node.ctx.note("refusal waited", round(time.monotonic() - started, 1))
    node.ctx.note("live nodes at refusal", live)
    node.ctx.note("o2net log", [line for line in kernel_log() if "o2net" in line][-10:])
