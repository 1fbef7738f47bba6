"""The administrator's tools on a real two-node cluster: reload and check (twonode_tools_guest.py).

- ``global:reload``: a third node added to cluster.conf on both nodes is added
  by ``reload`` to the running cluster under the mounted volume, as its
  ``--dry-run`` planned; the volume stays mounted and the I/O goes on; the
  node removed from the files again is removed by the next reload.
- ``global:timeouts``: B runs with a longer idle timeout; both heartbeat, o2net
  refuses the connection, and ``status`` and ``check`` on each node say so,
  check with the kernel's reason from its log.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from schemacheck import errors

from . import twonode_guest
from . import twonode_tools_guest as tools
from .harness import REPO, Boot, ScenarioResult
from .test_twonode import CLUSTER, Nodes, fully_unloaded, mounted, offline, ok, same_data

pytestmark = [pytest.mark.realkernel, pytest.mark.twonode]

TWONODE_SCENARIOS = ["global:reload", "global:timeouts"]
THIRD, ADDRESS, NUMBER = tools.THIRD
STATUS, CHECK = (
    json.loads((REPO / "doc" / f"{verb}.schema.json").read_text()) for verb in ("status", "check")
)
ME = {role: (name, number) for role, (name, _address, number) in twonode_guest.NODES.items()}


def both(pair: dict[str, Boot], name: str) -> list[tuple[str, ScenarioResult]]:
    nodes = Nodes(pair, name)
    return [("a", nodes.a), ("b", nodes.b)]


def json_of(node: ScenarioResult, label: str, rc: int, schema: dict[str, Any]) -> Any:
    """The JSON a step printed, once it exited ``rc``, valid against its documented schema."""
    step = ok(node, label, rc)
    try:
        data = json.loads(step["stdout"])
    except ValueError as error:
        message = f"{label}: not JSON ({error}): {step['stdout']}"
        raise AssertionError(node.explain(message)) from None
    invalid = errors(data, schema)
    node.check(not invalid, f"{label} breaks its schema: {invalid}")
    return data


def third_node(node: ScenarioResult, label: str) -> dict[str, str | None]:
    prefix = f"{CLUSTER}/node/{THIRD}/"
    conf = node.snap(label)["configfs"]
    return {path[len(prefix) :]: value for path, value in conf.items() if path.startswith(prefix)}


def pair_node(pair: dict[str, Boot], name: str, role: str) -> ScenarioResult:
    return pair[role].scenario(name)


def test_reload_adds_a_node_under_a_mounted_volume_on_both_nodes(pair: dict[str, Boot]) -> None:
    for role, node in both(pair, "global:reload"):
        other = "b" if role == "a" else "a"
        ok(node, "start")
        ok(node, "mount")
        ok(node, "add-node")
        pending = ok(node, "status pending")
        node.check(
            "Pending:" in pending["stdout"] and THIRD in pending["stdout"],
            f"status shows no pending {THIRD}: {pending['stdout']}",
        )

        dry = ok(node, "reload dry-run")
        node.check(not third_node(node, "after dry run"), "the dry run changed configfs")
        create = f"  would create directory /sys/kernel/config/{CLUSTER}/node/{THIRD}"
        node.check(create in dry["stdout"].splitlines(), f"no {create!r}: {dry['stdout']}")
        real = ok(node, "reload")
        titles = [line for line in dry["stdout"].splitlines() if line.endswith(": dry run")]
        node.check(
            real["stdout"].splitlines() == [t.replace(": dry run", ": OK") for t in titles],
            f"reload did other than its plan:\n{real['stdout']}\nplanned:\n{dry['stdout']}",
        )
        added = third_node(node, "reloaded")
        node.check(
            [added.get(key) for key in ("num", "ipv4_address", "ipv4_port", "local")]
            == [str(NUMBER), ADDRESS, "7777", "0"],
            f"{THIRD} in configfs after reload: {added}",
        )
        node.check(mounted(node, "reloaded"), "the volume went away with the reload")
        same_data(node, pair_node(pair, "global:reload", other), f"before-reload-{other}")
        same_data(node, pair_node(pair, "global:reload", other), f"after-reload-{other}")

        facts = json_of(node, "status json after reload", 0, STATUS)
        node.check(facts["pending"] == [], f"still pending: {facts['pending']}")
        names = {entry["name"]: entry for entry in facts["nodes"]}
        me, _number = ME[role]
        node.check(names.get(THIRD, {}).get("heartbeating") is False, f"nodes: {names}")
        node.check(names.get(ME[other][0], {}).get("connected") is True, f"nodes: {names}")
        node.check(names.get(me, {}).get("local") is True, f"nodes: {names}")

        # Removed from the files again: it never heartbeated, so reload removes it online.
        ok(node, "remove-node")
        ok(node, "reload removal")
        node.check(not third_node(node, "removed"), f"{THIRD} left: {third_node(node, 'removed')}")
        node.check(mounted(node, "removed"), "the volume went away with the removal")
        same_data(node, pair_node(pair, "global:reload", other), f"after-removal-{other}")

        ok(node, "umount at end")
        ok(node, "stop at end")
        offline(node, "end")
        fully_unloaded(node, "end")


def test_a_differing_idle_timeout_heartbeats_without_a_connection(pair: dict[str, Boot]) -> None:
    for role, node in both(pair, "global:timeouts"):
        other = "b" if role == "a" else "a"
        peer, peer_number = ME[other]
        ok(node, "start")
        node.check(
            {"0", "1"} <= set(node.notes.get("live nodes at refusal", [])),
            f"not both heartbeating after {node.notes.get('refusal waited')} s:"
            f" {node.notes.get('live nodes at refusal')}; {node.notes.get('o2net log')}",
        )
        facts = json_of(node, "status json", 0, STATUS)
        names = {entry["name"]: entry for entry in facts["nodes"]}
        node.check(
            (names.get(peer, {}).get("heartbeating"), names.get(peer, {}).get("connected"))
            == (True, False),
            f"{peer} should heartbeat without a connection: {names.get(peer)}",
        )

        text = ok(node, "check", 1)
        lines = [line for line in text["stdout"].splitlines() if line.startswith("peer: ")]
        node.check(len(lines) == 1, f"one peer finding expected: {text['stdout']}")
        theirs, mine = (30000, 40000) if role == "b" else (40000, 30000)
        reason = (
            f"o2net: node {peer} (num {peer_number}) at {twonode_guest.NODES[other][1]}:7777"
            f" uses a network idle timeout of {theirs} ms, but we use {mine} ms locally."
            " Disconnecting."
        )
        found = [f for f in json_of(node, "check json", 1, CHECK)["findings"] if not f["ok"]]
        peers = [f for f in found if f["check"] == "peer"]
        node.check(len(peers) == 1, f"check --json: {found}")
        node.check(
            peers[0]["message"]
            == f"node {peer} (number {peer_number}) heartbeats but o2net is not connected"
            f" to it (the kernel log: {reason})",
            f"check's peer finding: {peers[0]}",
        )
        node.check(
            peers[0]["fix"].startswith("make O2CB_IDLE_TIMEOUT_MS the same on every node"),
            f"check's fix: {peers[0]['fix']}",
        )
        node.check(lines[0] == f"peer: {peers[0]['message']}; {peers[0]['fix']}", lines[0])
        ok(node, "stop at end")
        offline(node, "end")
        fully_unloaded(node, "end")
