"""Guest side of the two-node bed: one node of a real two-node o2cb cluster.

Two guests run this script at the same time (``python twonode_guest.py
PLAN.json``), one as node ``a`` (vm-a, 10.9.9.1) and one as node ``b``
(vm-b, 10.9.9.2).  They share one or two raw disks (virtio, found by their
serial numbers) and a directory of the host, in which they leave flag files
to wait for each other at each step of a scenario.  Each node records its
own commands, exit codes and kernel snapshots with guest.py's Context, into
``results-<node>.json``; the host-side tests read both files and assert.

A scenario names the implementation each node runs: ``ours`` (the o2cb CLI)
or ``reference`` (Debian's /etc/init.d/o2cb).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

try:
    from . import guest, twonode_pcmk_guest
except ImportError:  # run as a script in the guest
    import guest  # type: ignore[no-redef]
    import twonode_pcmk_guest  # type: ignore[no-redef]
try:
    from . import twonode_tools_guest
except ImportError:  # run as a script in the guest
    import twonode_tools_guest  # type: ignore[no-redef]

CLUSTER = "ocfs2"
NODES = {"a": ("vm-a", "10.9.9.1", 0), "b": ("vm-b", "10.9.9.2", 1)}
MACS = {"a": "52:54:00:00:00:0a", "b": "52:54:00:00:00:0b"}
# The serial numbers the host gives the shared disks (twonode.py).
DISK_SERIALS = ("o2cbtn1", "o2cbtn2")
MOUNT = "/tmp/o2cb-tn-mnt"
MKFS = "mkfs.ocfs2 -q -F -N 2 -b 4K -C 4K -J size=8M --cluster-stack=o2cb"
# Both nodes must agree on the timeouts or o2net refuses the connection.
SYSCONFIG = f"""\
O2CB_ENABLED=true
O2CB_STACK=o2cb
O2CB_BOOTCLUSTER={CLUSTER}
O2CB_HEARTBEAT_THRESHOLD=31
O2CB_IDLE_TIMEOUT_MS=30000
O2CB_KEEPALIVE_DELAY_MS=2000
O2CB_RECONNECT_DELAY_MS=2000
"""
BARRIER_TIMEOUT = 240.0


def cluster_conf() -> str:
    text = f"cluster:\n\tnode_count = 2\n\tname = {CLUSTER}\n"
    for name, address, number in NODES.values():
        text += (
            f"\nnode:\n\tip_port = 7777\n\tip_address = {address}\n"
            f"\tnumber = {number}\n\tname = {name}\n\tcluster = {CLUSTER}\n"
        )
    return text


def write_config() -> None:
    guest.write_config(cluster_conf(), SYSCONFIG)


def o2cb_tool() -> str:
    """ocfs2-tools' own cluster configuration tool, never our CLI."""
    return shutil.which("o2cb", path="/usr/sbin:/sbin") or "/sbin/o2cb"


class Aborted(Exception):
    """The other node gave up on the scenario: waiting for it is pointless."""


class Node:
    """This node's side of a scenario: its context plus the meeting points."""

    def __init__(self, ctx: guest.Context, role: str, scenario: str, sync: str, disks: list[str]):
        self.ctx = ctx
        self.role = role
        self.other = "b" if role == "a" else "a"
        self.scenario = scenario
        self.sync = sync
        self.disks = disks

    def _flag(self, name: str, role: str) -> str:
        return os.path.join(self.sync, f"{self.scenario.replace(':', '_')}--{name}--{role}")

    def meet(self, name: str, timeout: float = BARRIER_TIMEOUT) -> None:
        """Say this node reached ``name`` and wait until the other node has too."""
        guest.log(f"[{self.role}] at {name}")
        with open(self._flag(name, self.role), "w") as handle:
            handle.write(str(time.time()))
        deadline = time.monotonic() + timeout
        theirs, aborted = self._flag(name, self.other), self._flag("ABORT", self.other)
        while not os.path.exists(theirs):
            if os.path.exists(aborted):
                raise Aborted(f"node {self.other} aborted the scenario (at {name})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {self.other} did not reach {name} in {timeout:.0f}s")
            time.sleep(0.2)

    def abort(self) -> None:
        with open(self._flag("ABORT", self.role), "w") as handle:
            handle.write("aborted")

    # -- the volume -----------------------------------------------------------

    def write(self, name: str) -> None:
        """Write ``name`` on the volume and note its digest; fsync so the other node sees it."""
        data = f"{name} from {self.role} {time.time()}\n".encode() + os.urandom(64 << 10)
        try:
            with open(os.path.join(MOUNT, name), "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self.ctx.note(f"wrote {name}", hashlib.sha256(data).hexdigest())
        except OSError as error:
            self.ctx.note(f"wrote {name}", f"<error: {error}>")

    def read(self, name: str) -> None:
        self.ctx.note(f"read {name}", guest.sha256(os.path.join(MOUNT, name)))

    def mount(self, label: str = "mount", timeout: float = 180) -> None:
        os.makedirs(MOUNT, exist_ok=True)
        self.ctx.run(label, ["mount", "-t", "ocfs2", self.disks[0], MOUNT], timeout=timeout)

    def umount(self, label: str = "umount", timeout: float = 180) -> None:
        self.ctx.run(label, ["umount", MOUNT], timeout=timeout)


def find_disks() -> list[str]:
    """The shared disks, in the host's order, by the serial numbers it gave them."""
    by_serial = {}
    for name in os.listdir("/sys/block"):
        serial = (guest.read(f"/sys/block/{name}/serial") or "").strip()
        if serial:
            by_serial[serial] = f"/dev/{name}"
    return [by_serial[serial] for serial in DISK_SERIALS if serial in by_serial]


def bring_up_network(role: str) -> list[str]:
    problems = []
    guest.quiet(["modprobe", "-a", "virtio_net", "virtio_blk", "loop"])
    interface = None
    for _ in range(50):
        for name in os.listdir("/sys/class/net"):
            if (guest.read(f"/sys/class/net/{name}/address") or "").strip() == MACS[role]:
                interface = name
        if interface:
            break
        time.sleep(0.1)
    if not interface:
        return [f"no interface with mac {MACS[role]}"]
    for argv in (
        ["ip", "link", "set", interface, "up"],
        ["ip", "addr", "add", f"{NODES[role][1]}/24", "dev", interface],
    ):
        rc, out = guest.quiet(argv)
        if rc:
            problems.append(f"{' '.join(argv)}: {out}")
    return problems


# -- scenarios ----------------------------------------------------------------

def format_disks(node: Node, global_heartbeat: bool) -> None:
    """Node a formats the shared disk (both disks, as two regions, in global mode)."""
    disks = node.disks if global_heartbeat else node.disks[:1]
    extra = ["--global-heartbeat"] if global_heartbeat else []
    for index, disk in enumerate(disks):
        # mkfs.ocfs2 asks before overwriting a volume of another scenario,
        # even with -F, when it cannot check the cluster: start from zeros.
        node.ctx.run(
            f"wipe {index}",
            ["dd", "if=/dev/zero", f"of={disk}", "bs=1M", "count=2", "oflag=direct", "status=none"],
        )
        node.ctx.run(
            f"mkfs {index}",
            [*MKFS.split(), *extra, f"--cluster-name={CLUSTER}", "-L", f"o2cbtn{index}", disk],
        )


def configure_global(node: Node) -> None:
    """What ocfs2-tools' documentation has an administrator do, on each node."""
    tool = o2cb_tool()
    for index, disk in enumerate(node.disks):
        node.ctx.run(f"add-heartbeat {index}", [tool, "add-heartbeat", CLUSTER, disk])
    node.ctx.run("heartbeat-mode", [tool, "heartbeat-mode", CLUSTER, "global"])
    node.ctx.run("cluster.conf", ["cat", "/etc/ocfs2/cluster.conf"])


def note_regions(node: Node) -> None:
    """What o2cb_init.ocfs2disk reads from each disk, to compare with what the kernel gets."""
    from o2cb_init import ocfs2disk

    for disk in node.disks:
        try:
            region = ocfs2disk.heartbeat_region(disk)
            node.ctx.note(f"region {disk}", dataclasses.asdict(region))
        except ocfs2disk.DiskError as error:
            node.ctx.note(f"region {disk}", error.message)


def share_and_return(node: Node, global_heartbeat: bool) -> None:
    """Both start and share files; b's stop is refused while mounted; b leaves and returns."""
    ctx, a = node.ctx, node.role == "a"
    if a:
        format_disks(node, global_heartbeat)
    node.meet("formatted")
    if global_heartbeat:
        note_regions(node)
        configure_global(node)
    ctx.snap("before")
    ctx.o2cb("start", label="start")
    ctx.snap("started")
    node.meet("started")
    node.mount()
    node.meet("mounted")
    node.write(f"from-{node.role}")
    node.meet("written")
    node.read(f"from-{node.other}")
    ctx.snap("mounted")
    node.meet("read")
    if not a:
        ctx.o2cb("stop", label="stop while mounted")
        ctx.snap("after refused stop")
    node.meet("b refused")
    if a:
        node.write("a-after-refusal")
    node.meet("a wrote")
    if not a:
        node.read("a-after-refusal")
        node.umount()
        ctx.o2cb("stop", label="stop")
        ctx.snap("b stopped")
    node.meet("b stopped")
    if a:
        node.write("a-alone")
        ctx.snap("alone")
    node.meet("a alone")
    if not a:
        ctx.o2cb("start", label="start again")
        ctx.snap("started again")
        node.mount("mount again")
        node.read("a-alone")
        node.read("from-a")
        node.read("from-b")
    node.meet("b back")
    node.umount("umount at end")
    node.meet("unmounted")
    # The higher node number leaves first: o2quo favours the lowest.
    if not a:
        ctx.o2cb("stop", label="stop at end")
        ctx.snap("end")
    node.meet("b down")
    if a:
        ctx.o2cb("stop", label="stop at end")
        ctx.snap("end")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """What each node runs (``ours`` or ``reference``), in which heartbeat mode, and the
    story both nodes play.  A story of another topic lives in a module of its own
    (twonode_TOPIC_guest.py, which gets the Node and does not import this script)
    and is added here with one line."""

    impls: dict[str, str]
    global_heartbeat: bool
    story: Callable[[Node, bool], None]

    @property
    def disks(self) -> int:
        return 2 if self.global_heartbeat else 1


OURS = {"a": "ours", "b": "ours"}
TOOLS = twonode_tools_guest.Stories(format_disks, configure_global, o2cb_tool)
SCENARIOS: dict[str, Scenario] = {
    "local:ours": Scenario(OURS, False, share_and_return),
    "local:mixed": Scenario({"a": "reference", "b": "ours"}, False, share_and_return),
    "global:reference": Scenario({"a": "reference", "b": "reference"}, True, share_and_return),
    "global:ours": Scenario(OURS, True, share_and_return),
    "pcmk:ours": Scenario(OURS, False, twonode_pcmk_guest.share_leave_and_return),
    "global:reload": Scenario(OURS, True, TOOLS.reload_under_mount),
    "global:timeouts": Scenario(OURS, True, TOOLS.differing_timeouts),
}


# -- main ---------------------------------------------------------------------


def run_scenario(plan: dict[str, Any], name: str, record: dict[str, Any], disks: list[str]) -> None:
    scenario = SCENARIOS[name]
    role = plan["role"]
    impl = scenario.impls[role]
    ctx = guest.Context(dict(plan, impl=impl), record)
    node = Node(ctx, role, name, plan["sync"], disks)
    record["impl"] = impl
    try:
        if len(disks) < scenario.disks:
            raise RuntimeError(f"shared disks missing: found {disks}")
        node.meet("begin")
        scenario.story(node, scenario.global_heartbeat)
    except Exception:  # noqa: BLE001 - recorded for the host to report
        record["error"] = traceback.format_exc()
        guest.log(record["error"])
        node.abort()


def main(argv: list[str]) -> int:
    with open(argv[1]) as handle:
        plan = json.load(handle)
    out = plan["results"]
    guest.SHARED_DIRS.add(plan["sync"])
    guest.SHARED_DIRS.add(os.path.dirname(out))
    role = plan["role"]
    guest.log(f"o2cb-tn: node={role} scenarios={' '.join(plan['scenarios'])}")
    problems = bring_up_network(role)
    disks = find_disks()
    write_config()
    results: dict[str, Any] = {
        "role": role,
        "plan": plan,
        "uname": os.uname().release,
        "hostname": os.uname().nodename,
        "disks": disks,
        "setup_problems": problems,
        "baseline": guest.snapshot(),
        "scenarios": {},
        "finished": False,
    }
    baseline = results["baseline"]
    guest.save(out, results)
    for name in plan["scenarios"]:
        record: dict[str, Any] = {"steps": [], "snapshots": {}, "notes": {}, "error": None}
        results["scenarios"][name] = record
        guest.log(f"{guest.BEGIN}{name}")
        started = time.monotonic()
        record["reset_before"] = reset(baseline)
        run_scenario(plan, name, record, disks)
        record["reset_after"] = reset(baseline)
        record["seconds"] = round(time.monotonic() - started, 2)
        guest.log(f"{guest.END}{name}")
        guest.save(out, results)
    results["finished"] = True
    guest.save(out, results)
    guest.log("o2cb-tn: done")
    return 0


def reset(baseline: dict[str, Any]) -> list[str]:
    problems = guest.reset_kernel(baseline)
    write_config()  # guest.reset_kernel writes the one-node configuration
    return problems


if __name__ == "__main__":
    # This tree's o2cb_init (imported by the forked verbs), whichever one the
    # interpreter has installed: the bed tests the tree it is run from.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    sys.exit(main(sys.argv))
