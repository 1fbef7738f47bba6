"""`check`: every finding made to happen on the simulated kernel, then reported.

A clean machine reports nothing (exit 0); a problem is one line naming what
to do (exit 1); the configuration file or cluster.conf missing or invalid
is exit 6 with start's message.  `--json` is validated against the schema.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runs import CLUSTER, CONFIG, o2cb
from simkernel import SimKernel, globalhb, o2net, two_node_cluster_conf

from o2cb_init.check import JSON_VERSION

UUID = "0123456789ABCDEF0123456789ABCDEF"


def problems(run_stdout: str) -> list[str]:
    return [line for line in run_stdout.splitlines() if line != "No problems found"]


def findings(sim: SimKernel) -> list[dict[str, object]]:
    run = o2cb(sim, "check", "--json")
    data = json.loads(run.stdout)
    assert data["version"] == JSON_VERSION
    return [f for f in data["findings"] if not f["ok"]]


def sane_sysctl(sim: SimKernel) -> None:
    sim.write_config("1\n", "/proc/sys/kernel/panic_on_oops")
    sim.write_config("30\n", "/proc/sys/kernel/panic")


def test_a_clean_machine_reports_nothing(machine: SimKernel) -> None:
    sane_sysctl(machine)
    run = o2cb(machine, "check")
    assert run.exit_code == 0, run.stdout
    assert run.lines == ["No problems found"]


def test_a_clean_online_cluster_reports_nothing(online: SimKernel) -> None:
    sane_sysctl(online)
    run = o2cb(online, "check")
    assert run.exit_code == 0, run.stdout
    assert run.lines == ["No problems found"]


def test_check_changes_nothing(online: SimKernel) -> None:
    before = online.snapshot()
    online.write_cluster_conf(two_node_cluster_conf() + "\n")
    o2cb(online, "check")
    assert online.snapshot() == before


def test_a_missing_config_file_is_exit_6_with_starts_message(sim: SimKernel) -> None:
    start = o2cb(sim, "start")
    run = o2cb(sim, "check")
    assert run.exit_code == start.exit_code == 6
    message = start.stderr.strip().removeprefix("o2cb: ")
    assert run.lines[0].startswith(f"config: {message}")


def test_an_invalid_cluster_conf_is_exit_6(machine: SimKernel) -> None:
    machine.write_cluster_conf("node:\n\tname = node1\n")
    start = o2cb(machine, "start")
    run = o2cb(machine, "check")
    assert run.exit_code == start.exit_code == 6
    assert run.lines[0].startswith("cluster.conf: " + start.stderr.strip().removeprefix("o2cb: "))


def test_a_cluster_missing_from_cluster_conf_is_exit_6(machine: SimKernel) -> None:
    machine.write_cluster_conf(two_node_cluster_conf(name="other"))
    run = o2cb(machine, "check")
    assert run.exit_code == 6
    assert run.lines == [
        f"cluster.conf: Cluster {CLUSTER} is not defined in /etc/ocfs2/cluster.conf; add its"
        " cluster: stanza, or set O2CB_BOOTCLUSTER to a cluster it defines"]


def test_this_host_matching_no_node(machine: SimKernel) -> None:
    sane_sysctl(machine)
    machine.set_hostname("stranger")
    run = o2cb(machine, "check")
    assert run.exit_code == 1
    assert run.lines == [
        "node: This node (stranger) is not a node of cluster ocfs2 in /etc/ocfs2/cluster.conf;"
        " add a node named stranger to cluster.conf on every node"]


def test_an_address_on_no_local_interface(machine: SimKernel) -> None:
    sane_sysctl(machine)
    machine.write_cluster_conf(two_node_cluster_conf().replace("127.0.0.1", "192.0.2.1"))
    found = findings(machine)
    assert [f["check"] for f in found] == ["address"]
    assert "192.0.2.1 is on no interface of this host" in str(found[0]["message"])


def test_a_port_taken_by_another_process(machine: SimKernel) -> None:
    sane_sysctl(machine)
    o2net.process_socket(machine.root, 4321, "squatter", "0.0.0.0", 7777)
    run = o2cb(machine, "check")
    assert run.exit_code == 1
    assert run.lines == [
        "port: cluster port 127.0.0.1:7777 is taken by pid 4321 (squatter); stop that program,"
        " or give the cluster another ip_port in cluster.conf on every node"]


def test_a_taken_port_fails_start_before_anything_loads(machine: SimKernel) -> None:
    o2net.process_socket(machine.root, 4321, "squatter", "127.0.0.1", 7777)
    before = machine.snapshot()
    run = o2cb(machine, "start")
    assert run.exit_code == 1
    assert run.stdout == ""
    assert "cluster port 127.0.0.1:7777 is taken by pid 4321 (squatter)" in run.stderr
    assert machine.snapshot() == before


def test_a_port_on_another_address_is_no_problem(machine: SimKernel) -> None:
    sane_sysctl(machine)
    o2net.process_socket(machine.root, 4321, "other", "10.1.1.1", 7777)
    assert o2cb(machine, "check").exit_code == 0


def test_online_but_not_listening(online: SimKernel) -> None:
    sane_sysctl(online)
    o2net.stop_listening(online.root)
    found = findings(online)
    assert [f["check"] for f in found] == ["port"]
    assert "nothing listens on 127.0.0.1:7777" in str(found[0]["message"])


@pytest.mark.parametrize(("oops", "panic", "expected"), [
    ("0", "30", ["panic_on_oops"]),
    ("1", "0", ["panic"]),
    ("0", "0", ["panic_on_oops", "panic"]),
])
def test_kernel_panic_settings(machine: SimKernel, oops: str, panic: str,
                               expected: list[str]) -> None:
    machine.write_config(f"{oops}\n", "/proc/sys/kernel/panic_on_oops")
    machine.write_config(f"{panic}\n", "/proc/sys/kernel/panic")
    run = o2cb(machine, "check")
    assert run.exit_code == 1
    assert [line.split(":", 1)[0] for line in run.lines] == expected


def test_start_warns_on_stderr_and_keeps_stdout(machine: SimKernel) -> None:
    machine.write_config("0\n", "/proc/sys/kernel/panic_on_oops")
    reference = o2cb(machine, "--dry-run", "start")
    run = o2cb(machine, "start")
    assert run.exit_code == 0
    assert any(line.startswith("o2cb: warning: panic_on_oops: kernel.panic_on_oops is 0")
               for line in run.errors)
    assert "warning" not in run.stdout
    assert reference.exit_code == 0


def global_conf(uuid: str = UUID) -> str:
    return (two_node_cluster_conf().replace("\tnode_count = 2\n",
                                            "\tnode_count = 2\n\theartbeat_mode = global\n")
            + f"\nheartbeat:\n\tregion = {uuid}\n\tcluster = {CLUSTER}\n")


def test_a_missing_heartbeat_device(machine: SimKernel) -> None:
    sane_sysctl(machine)
    machine.write_cluster_conf(global_conf())
    found = findings(machine)
    assert [f["check"] for f in found] == ["heartbeat-device"]
    assert found[0]["message"] == f"heartbeat region {UUID}: no block device holds this volume"


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    image = tmp_path_factory.mktemp("lun") / "lun.img"
    return image, globalhb.make_volume(image)


def test_a_heartbeat_device_that_is_only_a_multipath_path(
        machine: SimKernel, volume: tuple[Path, str]) -> None:
    image, uuid = volume
    sane_sysctl(machine)
    machine.add_multipath("naa.6001405aabbccdd", ("sdb", "sdc"), image, up=False)
    machine.write_cluster_conf(global_conf(uuid))
    found = findings(machine)
    assert [f["check"] for f in found] == ["heartbeat-device"]
    assert "only multipath paths" in str(found[0]["message"])


def test_a_node_added_to_cluster_conf_is_reload_applies(online: SimKernel) -> None:
    sane_sysctl(online)
    online.write_cluster_conf(two_node_cluster_conf() + (
        "\nnode:\n\tip_port = 7777\n\tip_address = 10.0.0.3\n\tnumber = 2\n"
        f"\tname = node3\n\tcluster = {CLUSTER}\n"))
    run = o2cb(online, "check")
    assert run.exit_code == 1
    assert run.lines == ["running: running cluster ocfs2: node node3 is in cluster.conf but not"
                         " running: reload applies; run o2cb.init reload"]


def test_a_changed_timeout_is_restart_needed(online: SimKernel) -> None:
    sane_sysctl(online)
    online.write_config(CONFIG.replace("O2CB_IDLE_TIMEOUT_MS=20000", "O2CB_IDLE_TIMEOUT_MS=40000"))
    found = findings(online)
    assert [f["check"] for f in found] == ["running"]
    assert "idle_timeout_ms 20000 -> 40000: restart needed" in str(found[0]["message"])


def test_a_changed_node_address_is_restart_needed(online: SimKernel) -> None:
    sane_sysctl(online)
    online.write_cluster_conf(two_node_cluster_conf().replace("10.0.0.2", "10.0.0.20"))
    found = findings(online)
    assert [f["check"] for f in found] == ["running"]
    assert "node node2 ipv4_address 10.0.0.2 -> 10.0.0.20: restart needed" in str(
        found[0]["message"])


def test_a_changed_heartbeat_mode_is_restart_needed(online: SimKernel) -> None:
    sane_sysctl(online)
    online.write_cluster_conf(two_node_cluster_conf().replace(
        "\tnode_count = 2\n", "\tnode_count = 2\n\theartbeat_mode = global\n"))
    found = findings(online)
    assert [f["check"] for f in found] == ["running"]
    assert "heartbeat mode local -> global: restart needed" in str(found[0]["message"])


def test_a_peer_that_heartbeats_without_a_connection(online: SimKernel) -> None:
    sane_sysctl(online)
    o2net.set_nodes(online.root, live=[0, 1], connected=[])
    found = findings(online)
    assert [f["check"] for f in found] == ["peer"]
    assert found[0]["message"] == ("node node2 (number 1) heartbeats but o2net is not"
                                   " connected to it")
    # No kernel log to read here (/dev/kmsg needs root where dmesg is restricted).
    assert found[0]["fix"] == ("make the timeouts and the port the same on every node; the"
                               " kernel log says why (o2net), but /dev/kmsg could not be"
                               " read: run check as root")
    o2net.set_nodes(online.root, connected=[1])
    assert findings(online) == []


IDLE_REFUSAL = ("o2net: node node2 (num 1) at 10.0.0.2:7777 uses a network idle timeout of"
                " 40000 ms, but we use 30000 ms locally. Disconnecting.")


def test_a_peer_refused_at_the_handshake_gets_the_kernels_reason(online: SimKernel) -> None:
    sane_sysctl(online)
    o2net.set_nodes(online.root, live=[0, 1], connected=[])
    o2net.kernel_log(
        online.root,
        "o2net: node node2 (num 1) at 10.0.0.2:7777 uses a keepalive delay of 3000 ms, but"
        " we use 2000 ms locally. Disconnecting.",
        "o2net: node node3 (num 2) at 10.0.0.3:7777 uses a heartbeat timeout of 2000 ms, but"
        " we use 60000 ms locally. Disconnecting.",
        IDLE_REFUSAL,  # the latest word on node 1
        "o2net: No connection established with node 1 after 30.0 seconds, check network and"
        " cluster configuration.",
    )
    run = o2cb(online, "check")
    assert run.exit_code == 1
    assert run.lines == [
        "peer: node node2 (number 1) heartbeats but o2net is not connected to it (the kernel"
        f" log: {IDLE_REFUSAL}); make O2CB_IDLE_TIMEOUT_MS the same on every node, then"
        " restart the cluster on the node whose value differs"]
    assert [(f["check"], f["message"]) for f in findings(online)] == [
        ("peer", "node node2 (number 1) heartbeats but o2net is not connected to it (the"
         f" kernel log: {IDLE_REFUSAL})")]


@pytest.mark.parametrize(("words", "setting"), [
    ("a keepalive delay of 3000 ms", "O2CB_KEEPALIVE_DELAY_MS"),
    ("a heartbeat timeout of 2000 ms", "O2CB_HEARTBEAT_THRESHOLD"),
])
def test_each_handshake_refusal_names_its_setting(online: SimKernel, words: str,
                                                  setting: str) -> None:
    sane_sysctl(online)
    o2net.set_nodes(online.root, live=[0, 1], connected=[])
    o2net.kernel_log(online.root, f"o2net: node node2 (num 1) at 10.0.0.2:7777 uses {words},"
                     " but we use 60000 ms locally. Disconnecting.")
    (found,) = findings(online)
    assert str(found["fix"]).startswith(f"make {setting} the same on every node")


def test_a_peer_without_a_refusal_gets_o2nets_complaint(online: SimKernel) -> None:
    sane_sysctl(online)
    o2net.set_nodes(online.root, live=[0, 1], connected=[])
    waited = ("o2net: No connection established with node 1 after 30.0 seconds, check"
              " network and cluster configuration.")
    o2net.kernel_log(online.root, "o2hb: Heartbeat started on region", waited)
    (found,) = findings(online)
    assert found["message"] == ("node node2 (number 1) heartbeats but o2net is not connected"
                                f" to it (the kernel log: {waited})")
    assert found["fix"] == ("make the timeouts and the port the same on every node, and"
                            " check the network between the nodes")


def test_a_readable_log_without_a_word_on_the_peer(online: SimKernel) -> None:
    sane_sysctl(online)
    o2net.set_nodes(online.root, live=[0, 1], connected=[])
    o2net.kernel_log(online.root, IDLE_REFUSAL.replace("(num 1)", "(num 7)"))
    (found,) = findings(online)
    assert found["message"] == "node node2 (number 1) heartbeats but o2net is not connected to it"
    assert str(found["fix"]).endswith("check the network between the nodes")


def test_a_missing_control_daemon(machine: SimKernel) -> None:
    sane_sysctl(machine)
    machine.write_config(CONFIG.replace("O2CB_STACK=o2cb", "O2CB_STACK=cman"))
    run = o2cb(machine, "check")
    assert run.exit_code == 1
    assert [line.split(":", 1)[0] for line in run.lines] == ["daemon", "daemon"]
    assert "o2cb_controld is not installed" in run.lines[0]


def test_check_needs_no_root(machine: SimKernel, monkeypatch: pytest.MonkeyPatch) -> None:
    from o2cb_init.system import System

    monkeypatch.setattr(System, "is_root_user", lambda self: False)
    sane_sysctl(machine)
    assert o2cb(machine, "check").exit_code == 0
