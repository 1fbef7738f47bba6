"""status: pending changes (the files moved on, exit 0) told apart from a partial
cluster (it lacks what its own start applied, exit 1), and each node's heartbeat
and o2net connection as debugfs shows them."""

from __future__ import annotations

import json

from runs import CLUSTER, o2cb, o2cb_process
from simkernel import SimKernel, o2net, two_node_cluster_conf

from o2cb_init.parts.drift import APPLIED_FILE

THIRD_NODE = (
    "\nnode:\n\tip_port = 7777\n\tip_address = 10.0.0.3\n\tnumber = 2\n"
    f"\tname = node3\n\tcluster = {CLUSTER}\n"
)


def test_start_records_what_it_applied_and_stop_forgets_it(machine: SimKernel) -> None:
    assert o2cb(machine, "start").exit_code == 0
    record = machine.path(APPLIED_FILE).read_text(encoding="utf-8")
    assert record.splitlines() == [
        f"cluster {CLUSTER}", "mode local",
        "node node1 0 127.0.0.1 7777", "node node2 1 10.0.0.2 7777"]
    assert o2cb(machine, "stop").exit_code == 0
    assert not machine.path(APPLIED_FILE).exists()


def test_a_node_added_to_the_file_is_pending_not_partial(online: SimKernel) -> None:
    online.write_cluster_conf(two_node_cluster_conf() + THIRD_NODE)
    run = o2cb(online, "status")
    assert run.exit_code == 0, run.stdout
    assert f'Checking O2CB cluster "{CLUSTER}": Online' in run.lines
    assert ("  Pending: node node3 is in cluster.conf but not running: reload applies"
            in run.lines)
    facts = json.loads(o2cb(online, "status", "--json").stdout)
    assert facts["partial"] is False and facts["running"] is True
    assert [p["subject"] for p in facts["pending"]] == ["node node3"]
    assert facts["pending"][0]["online"] is True
    assert o2cb(online, "reload").exit_code == 0
    run = o2cb(online, "status")
    assert run.exit_code == 0 and not any("Pending" in line for line in run.lines)


def test_a_cluster_lacking_what_start_applied_is_partial(online: SimKernel) -> None:
    tree = online.configfs()
    assert tree is not None
    node = tree / "cluster" / CLUSTER / "node" / "node2"
    for attribute in node.iterdir():
        attribute.unlink()
    node.rmdir()
    run = o2cb(online, "status")
    assert run.exit_code == 1
    assert f'Checking O2CB cluster "{CLUSTER}": Partial' in run.lines
    assert "  Missing: node node2" in run.lines


def test_a_killed_start_is_partial(machine: SimKernel) -> None:
    killed = o2cb_process(machine, "start", fault="configfs:3:kill")
    assert killed.exit_code < 0
    run = o2cb(machine, "status")
    assert run.exit_code == 1
    assert any(line.endswith(": Partial") for line in run.lines)


def test_status_shows_each_nodes_heartbeat_and_connection(online: SimKernel) -> None:
    o2net.set_nodes(online.root, live=[0, 1], connected=[])
    run = o2cb(online, "status")
    assert run.exit_code == 0
    assert "  Node node1 (0) 127.0.0.1:7777: this node, heartbeating" in run.lines
    assert "  Node node2 (1) 10.0.0.2:7777: heartbeating, not connected" in run.lines
    nodes = {n["name"]: n for n in json.loads(o2cb(online, "status", "--json").stdout)["nodes"]}
    assert (nodes["node2"]["heartbeating"], nodes["node2"]["connected"]) == (True, False)
    assert (nodes["node1"]["heartbeating"], nodes["node1"]["connected"]) == (True, None)
    o2net.set_nodes(online.root, connected=[1])
    assert "  Node node2 (1) 10.0.0.2:7777: heartbeating, connected" in o2cb(
        online, "status").lines


def test_without_debugfs_the_nodes_say_nothing_of_it(online: SimKernel) -> None:
    nodes = json.loads(o2cb(online, "status", "--json").stdout)["nodes"]
    assert {(n["heartbeating"], n["connected"]) for n in nodes} == {(None, None)}
    assert not any(line.startswith("  Node ") for line in o2cb(online, "status").lines)
