"""A real two-node o2cb cluster: two guests of Debian's kernel sharing a disk and a network.

One pair of boots (conftest.pair) runs these scenarios of twonode_guest.py; each test reads
both nodes' records and asserts on both: exit codes, kernel state (modules,
mounts, configfs) and the data each node read back from the shared volume.

- ``local:ours``: our o2cb on both nodes, local heartbeat;
- ``local:mixed``: Debian's /etc/init.d/o2cb on node a, ours on node b;
- ``global:reference``: Debian's script on both, global heartbeat, two regions
  (two disks): proves the bed for global mode, and that ocfs2disk computes
  the region parameters the reference gives the kernel;
- ``global:ours``: the same with ours: both nodes start the two regions
  with the parameters ocfs2disk reads, and stop them again.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from . import twonode_guest
from .harness import Boot, ScenarioResult

pytestmark = [pytest.mark.realkernel, pytest.mark.twonode]

# The scenarios of the shared pair of boots (conftest.pair) that these tests read.
TWONODE_SCENARIOS = ["local:ours", "local:mixed", "global:reference", "global:ours"]
CLUSTER = f"cluster/{twonode_guest.CLUSTER}"
MOUNT = twonode_guest.MOUNT
HEX = re.compile(r"[0-9a-f]{64}")


class Nodes:
    """Both nodes' records of one scenario."""

    def __init__(self, pair: dict[str, Boot], name: str) -> None:
        self.a = pair["a"].scenario(name)
        self.b = pair["b"].scenario(name)
        for node in (self.a, self.b):
            node.check(not node.record.get("error"), "the scenario stopped early")

    def impl(self, node: ScenarioResult) -> str:
        return str(node.record["impl"])


def ok(node: ScenarioResult, label: str, rc: int = 0) -> dict[str, Any]:
    step = node.step(label)
    node.check(step["rc"] == rc, f"{label!r} exited {step['rc']}, expected {rc}: {step['stderr']}")
    return step


def mounted(node: ScenarioResult, label: str) -> bool:
    return [f"{MOUNT}", "ocfs2"] in [row[1:] for row in node.snap(label)["mounts"]]


def digest(node: ScenarioResult, key: str) -> str:
    value = node.notes.get(key)
    node.check(isinstance(value, str) and HEX.fullmatch(value), f"{key}: {value!r}")
    return str(value)


def same_data(reader: ScenarioResult, writer: ScenarioResult, name: str) -> None:
    written = digest(writer, f"wrote {name}")
    reader.check(
        reader.notes.get(f"read {name}") == written,
        f"{name} read back as {reader.notes.get(f'read {name}')!r}, written as {written}",
    )


# Modules of the cluster stack and of the OCFS2 file system: none may stay
# loaded after our stop.  A mount can also pull in helpers such as crc32c
# that have nothing to do with the stack; those are not ours to unload.
STACK_MODULE = re.compile(r"ocfs2|configfs|dlm|jbd2")


def fully_unloaded(node: ScenarioResult, label: str) -> None:
    """Modules and mounts are back to what they were before start."""
    before, after = node.snap("before"), node.snap(label)
    started = set(node.snap("started")["modules"]) - set(before["modules"])
    left = set(after["modules"]) - set(before["modules"])
    stack = {name for name in left if name in started or STACK_MODULE.search(name)}
    node.check(not stack, f"modules left loaded after {label}: {sorted(stack)}")
    node.check(
        sorted(after["mounts"]) == sorted(before["mounts"]),
        f"mounts differ: {after['mounts']} vs {before['mounts']}",
    )


def offline(node: ScenarioResult, label: str) -> None:
    node.check(f"{CLUSTER}/" not in node.snap(label)["configfs"], f"cluster left after {label}")


def regions(node: ScenarioResult, label: str) -> dict[str, dict[str, str]]:
    """Heartbeat regions in configfs: {uuid: {attribute: value}}."""
    found: dict[str, dict[str, str]] = {}
    prefix = f"{CLUSTER}/heartbeat/"
    for path, value in node.snap(label)["configfs"].items():
        rest = path[len(prefix) :] if path.startswith(prefix) else ""
        if rest.count("/") == 1 and not rest.endswith("/"):
            uuid, attribute = rest.split("/")
            found.setdefault(uuid, {})[attribute] = value or ""
    return found


def check_story(pair: dict[str, Boot], name: str, global_heartbeat: bool) -> None:
    nodes = Nodes(pair, name)
    a, b = nodes.a, nodes.b
    ok(a, "mkfs 0")
    for node, me in ((a, "vm-a"), (b, "vm-b")):
        ok(node, "start")
        conf = node.snap("started")["configfs"]
        node.check(conf.get(f"{CLUSTER}/node/{me}/local") == "1", f"{me} is not the local node")
        other = "vm-b" if me == "vm-a" else "vm-a"
        node.check(f"{CLUSTER}/node/{other}/" in conf, f"{other} missing from configfs")
        ok(node, "mount")
        node.check(mounted(node, "mounted"), "the volume is not mounted")
    same_data(a, b, "from-b")
    same_data(b, a, "from-a")

    # b's stop is refused while its volume is mounted; a goes on writing.
    refused = ok(b, "stop while mounted", 1)
    b.check(refused["stderr"].strip(), "a refused stop must say why on stderr")
    b.check(mounted(b, "after refused stop"), "the volume went away with the refused stop")
    b.check(
        f"{CLUSTER}/node/vm-b/" in b.snap("after refused stop")["configfs"],
        "the refused stop took the node down",
    )
    same_data(b, a, "a-after-refusal")

    # b leaves; a writes alone; b comes back and reads what a wrote.
    ok(b, "umount")
    ok(b, "stop")
    offline(b, "b stopped")
    if nodes.impl(b) == "ours":
        fully_unloaded(b, "b stopped")
    a.check(mounted(a, "alone"), "a lost its mount when b left")
    ok(b, "start again")
    ok(b, "mount again")
    same_data(b, a, "a-alone")
    same_data(b, a, "from-a")
    same_data(b, b, "from-b")

    for node in (a, b):
        ok(node, "umount at end")
        ok(node, "stop at end")
        offline(node, "end")
        if nodes.impl(node) == "ours":
            fully_unloaded(node, "end")

    if global_heartbeat:
        check_global(a, b)


def check_global(a: ScenarioResult, b: ScenarioResult) -> None:
    """Both regions run on both nodes while online, and each is what the volume says."""
    for node in (a, b):
        conf = node.snap("started")["configfs"]
        node.check(conf.get(f"{CLUSTER}/heartbeat/mode") == "global", "heartbeat mode not global")
        running = regions(node, "started")
        noted = {
            key[len("region ") :]: value
            for key, value in node.notes.items()
            if key.startswith("region ")
        }
        node.check(
            len(noted) == 2 and all(isinstance(v, dict) for v in noted.values()),
            f"ocfs2disk could not read both disks: {noted}",
        )
        node.check(len(running) == 2, f"expected two running regions, found {sorted(running)}")
        for disk, region in noted.items():
            attributes = running.get(region["uuid"])
            node.check(attributes is not None, f"no region for {disk} ({region['uuid']})")
            assert attributes is not None
            node.check(
                attributes.get("dev") == disk.rsplit("/", 1)[-1],
                f"region {region['uuid']} runs on {attributes.get('dev')}, not {disk}",
            )
            for key in ("block_bytes", "start_block", "blocks"):
                node.check(
                    attributes.get(key) == str(region[key]),
                    f"{key}: kernel has {attributes.get(key)}, ocfs2disk read {region[key]}",
                )
    b.check(len(regions(b, "after refused stop")) == 2, "the refused stop took regions down")
    b.check(not regions(b, "b stopped"), "regions left after stop")


def test_local_heartbeat_ours_on_both_nodes(pair: dict[str, Boot]) -> None:
    check_story(pair, "local:ours", global_heartbeat=False)


def test_local_heartbeat_reference_on_a_ours_on_b(pair: dict[str, Boot]) -> None:
    check_story(pair, "local:mixed", global_heartbeat=False)


def test_global_heartbeat_two_regions_reference_on_both_nodes(pair: dict[str, Boot]) -> None:
    check_story(pair, "global:reference", global_heartbeat=True)


def test_global_heartbeat_two_regions_ours_on_both_nodes(pair: dict[str, Boot]) -> None:
    check_story(pair, "global:ours", global_heartbeat=True)


def test_pair_booted_cleanly(pair: dict[str, Boot]) -> None:
    for role, boot in pair.items():
        assert not boot.problems, f"node {role}: {boot.problems}\n{boot.console[-4000:]}"
        assert boot.results.get("hostname") == twonode_guest.NODES[role][0]
        assert not boot.results.get("setup_problems"), boot.results.get("setup_problems")
        assert len(boot.results.get("disks", [])) == 2, boot.results.get("disks")
