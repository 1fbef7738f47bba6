"""pcmk on two real nodes: Debian's corosync and dlm_controld on both guests, one shared volume.

The ``pcmk:ours`` scenario of the shared pair of boots (conftest.pair;
story in twonode_pcmk_guest.py): corosync over the guests' network with
both nodes in its node list and two_node mode, our o2cb on both, node a
formatting a pcmk volume that both mount.  Each test reads both nodes'
records: exit codes, kernel state, the daemons' pids, what dlm_tool and
corosync's tools printed, and the data each node read back.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from . import twonode_guest, twonode_pcmk_guest
from .harness import Boot, ScenarioResult
from .test_twonode import Nodes, digest, mounted, ok, same_data

pytestmark = [pytest.mark.realkernel, pytest.mark.twonode]

TWONODE_SCENARIOS = ["pcmk:ours"]
NAME = "pcmk:ours"
ADDRESSES = {nodeid: address for _name, address, nodeid in twonode_pcmk_guest.COROSYNC_NODES}
NODEIDS = {"a": 1, "b": 2}
STACK_MODULE = re.compile(r"ocfs2|configfs|^dlm$")


@pytest.fixture
def nodes(pair: dict[str, Boot]) -> Nodes:
    return Nodes(pair, NAME)


def status(node: ScenarioResult, label: str) -> dict[str, Any]:
    facts: dict[str, Any] = json.loads(ok(node, label)["stdout"])
    return facts


def only_lockspace(node: ScenarioResult, facts: dict[str, Any]) -> dict[str, Any]:
    """The volume's lockspace in status --json (the only one the story makes)."""
    lockspaces = facts["lockspaces"]
    node.check(len(lockspaces) == 1, f"lockspaces: {lockspaces}")
    lockspace: dict[str, Any] = lockspaces[0]
    return lockspace


def corosync_ids(facts: dict[str, Any]) -> list[int]:
    return [member["nodeid"] for member in facts["corosync"]["members"]]


def dlm_ls(node: ScenarioResult, label: str) -> dict[str, list[int]]:
    return twonode_pcmk_guest.dlm_members(ok(node, label)["stdout"])


def daemons(node: ScenarioResult, label: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = node.notes[f"{label} daemons"]
    return found


def stack_modules(node: ScenarioResult, label: str) -> list[str]:
    return sorted(m for m in node.snap(label)["modules"] if STACK_MODULE.search(m))


def test_corosync_runs_over_the_guests_network_with_both_nodes(nodes: Nodes) -> None:
    for role, node in (("a", nodes.a), ("b", nodes.b)):
        node.check(node.notes["corosync quorate after"] is not None, "corosync never quorate")
        quorum = ok(node, "corosync up quorum")["stdout"]
        for line in ("Quorate:          Yes", "Total votes:      2", "2Node"):
            node.check(line in quorum, f"{line!r} not in corosync-quorumtool -s: {quorum}")
        listed = ok(node, "corosync up nodelist")["stdout"]
        for nodeid, address in ADDRESSES.items():
            node.check(f"ring0_addr (str) = {address}" in listed, f"{address}: {listed}")
            node.check(f"nodeid (u32) = {nodeid}" in listed, f"node {nodeid}: {listed}")
        for key, value in (("totem.token", "(u32) = 10000"), ("quorum.two_node", "(u8) = 1"),
                           ("totem.cluster_name", "(str) = ocfs2")):
            shown = ok(node, f"corosync up {key}")["stdout"]
            node.check(value in shown, f"corosync runs {shown!r}")
        local = [line for line in ok(node, "corosync up members")["stdout"].splitlines()
                 if "(local)" in line]
        node.check(len(local) == 1 and local[0].split()[0] == str(NODEIDS[role]),
                   f"the local node: {local}")


def test_both_start_and_share_a_pcmk_volume(pair: dict[str, Boot], nodes: Nodes) -> None:
    a, b = nodes.a, nodes.b
    ok(a, "mkfs")
    for role, node in (("a", a), ("b", b)):
        disk = pair[role].results["disks"][0]
        start = ok(node, "start")
        node.check("Starting dlm_controld: OK" in start["stdout"].splitlines(),
                   f"our start did not bring dlm_controld up: {start['stdout']!r}")
        node.check(node.snap("started")["sys_fs_ocfs2"]["cluster_stack"] == "pcmk",
                   "cluster_stack is not pcmk")
        node.check(daemons(node, "started")["dlm_controld"] != [], "no dlm_controld")
        ok(node, "mount")
        node.check(mounted(node, "mounted"), "the volume is not mounted")
        node.check(list(dlm_ls(node, "dlm_tool ls both").values()) == [[1, 2]],
                   "dlm_tool ls: both nodes should be in the volume's lockspace")
        lockspace = only_lockspace(node, status(node, "status both"))
        node.check(lockspace["members"] == [1, 2] and lockspace["device"] == disk
                   and lockspace["mountpoint"] == twonode_guest.MOUNT,
                   f"status lockspace: {lockspace}")
        node.check(lockspace["name"] in node.notes["mounted lockspaces"], "another lockspace")
    same_data(a, b, "from-b")
    same_data(b, a, "from-a")


def test_stop_is_refused_on_both_with_mount_and_daemons_intact(nodes: Nodes) -> None:
    for node in (nodes.a, nodes.b):
        refused = ok(node, "stop while mounted", 1)
        node.check("is still mounted on" in refused["stderr"], f"why: {refused['stderr']!r}")
        node.check(mounted(node, "after refused stop"), "the refused stop took the mount")
        node.check(daemons(node, "after refused stop") == daemons(node, "mounted"),
                   "a daemon went with the refused stop")
        node.check(stack_modules(node, "after refused stop") == stack_modules(node, "mounted"),
                   "modules went with the refused stop")
    same_data(nodes.b, nodes.a, "a-after-refusal")


def test_b_leaves_while_a_keeps_its_mount_and_writes(nodes: Nodes) -> None:
    a, b = nodes.a, nodes.b
    ok(b, "umount")
    stop = ok(b, "stop")
    b.check("Stopping dlm_controld: OK" in stop["stdout"].splitlines(), stop["stdout"])
    b.check(not [m for m in stack_modules(b, "b stopped") if m.startswith("ocfs2")],
            f"ocfs2 modules left: {stack_modules(b, 'b stopped')}")
    after = daemons(b, "b stopped")
    b.check(after["dlm_controld"] == [], "dlm_controld, which our start started, still runs")
    b.check(after["corosync"] == daemons(b, "started")["corosync"], "our stop touched corosync")
    a.check(mounted(a, "alone"), "a lost its mount when b left")
    digest(a, "wrote a-alone")
    a.check(daemons(a, "alone") == daemons(a, "mounted"), "a's daemons changed when b left")


def test_a_shows_b_in_corosync_but_out_of_the_lockspace(nodes: Nodes) -> None:
    a = nodes.a
    a.check(a.notes["lockspace down to one after"] is not None, "b never left the lockspace")
    a.check(list(dlm_ls(a, "dlm_tool ls alone").values()) == [[1]],
            "dlm_tool ls on a: one member expected")
    facts = status(a, "status b out")
    a.check(only_lockspace(a, facts)["members"] == [1], f"lockspace: {facts['lockspaces']}")
    a.check(corosync_ids(facts) == [1, 2], f"corosync members: {facts['corosync']}")
    a.check(facts["online"] is True, "a is not online")


def test_b_corosync_stopped_a_keeps_its_mount_and_quorum(nodes: Nodes) -> None:
    a, b = nodes.a, nodes.b
    b.check(daemons(b, "b corosync down") == {"corosync": [], "dlm_controld": []},
            f"daemons left on b: {daemons(b, 'b corosync down')}")
    a.check(a.notes["membership down to one after"] is not None, "b never left the membership")
    facts = status(a, "status b gone")
    a.check(corosync_ids(facts) == [1], f"corosync members: {facts['corosync']}")
    # The quorum status shows is the one corosync reports: two_node keeps it.
    quorum = ok(a, "b gone quorum")
    a.check("Quorate:          Yes" in quorum["stdout"] and "Total votes:      1"
            in quorum["stdout"], quorum["stdout"])
    a.check(facts["corosync"]["quorate"] is True and facts["online"] is True,
            f"status: {facts['corosync']}")
    a.check(list(dlm_ls(a, "dlm_tool ls b gone").values()) == [[1]], "the lockspace changed")
    a.check(mounted(a, "b gone"), "a lost its mount when b's corosync stopped")
    a.check(daemons(a, "b gone") == daemons(a, "mounted"), "a's daemons changed")
    digest(a, "wrote a-after-b-down")


def test_b_returns_and_reads_a_latest_file(nodes: Nodes) -> None:
    a, b = nodes.a, nodes.b
    b.check(b.notes["corosync quorate again after"] is not None, "corosync never quorate again")
    start = ok(b, "start again")
    b.check("Starting dlm_controld: OK" in start["stdout"].splitlines(), start["stdout"])
    ok(b, "mount again")
    for name in ("a-after-b-down", "a-alone", "from-a"):
        same_data(b, a, name)
    same_data(b, b, "from-b")
    b.check(list(dlm_ls(b, "dlm_tool ls again").values()) == [[1, 2]], "b not back in it")


def test_both_unmount_and_stop_cleanly(nodes: Nodes) -> None:
    for node in (nodes.a, nodes.b):
        ok(node, "umount at end")
        ok(node, "stop at end")
        node.check(stack_modules(node, "end") == [], f"left: {stack_modules(node, 'end')}")
        node.check(daemons(node, "end")["dlm_controld"] == [], "dlm_controld left running")
        node.check(daemons(node, "left") == {"corosync": [], "dlm_controld": []},
                   "the story left a daemon running for the next scenario")
        node.check(node.snap("left")["mounts"] == node.snap("before")["mounts"],
                   "the story left a mount")
        seconds = node.record["seconds"]
        node.check(isinstance(seconds, float | int) and seconds > 0, f"seconds: {seconds}")
