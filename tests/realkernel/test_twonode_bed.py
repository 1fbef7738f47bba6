"""The two-node bed's own logic, without booting: meeting points, qemu options, port probe."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from . import guest, twonode, twonode_guest


def node(tmp_path: Path, role: str) -> twonode_guest.Node:
    record: dict[str, object] = {"steps": [], "snapshots": {}, "notes": {}}
    ctx = guest.Context({"impl": "ours"}, record)
    return twonode_guest.Node(ctx, role, "local:ours", str(tmp_path), ["/dev/vda"])


def test_nodes_meet_in_order(tmp_path: Path) -> None:
    a, b = node(tmp_path, "a"), node(tmp_path, "b")
    order: list[str] = []

    def other_side() -> None:
        b.meet("first")
        order.append("b past first")
        b.meet("second")

    thread = threading.Thread(target=other_side)
    thread.start()
    a.meet("first")
    order.append("a past first")
    a.meet("second")
    thread.join(timeout=10)
    assert sorted(order) == ["a past first", "b past first"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "local_ours--first--a",
        "local_ours--first--b",
        "local_ours--second--a",
        "local_ours--second--b",
    ]


def test_an_aborted_node_releases_the_other_at_once(tmp_path: Path) -> None:
    a, b = node(tmp_path, "a"), node(tmp_path, "b")
    b.abort()
    with pytest.raises(twonode_guest.Aborted, match="node b aborted"):
        a.meet("anything", timeout=30)


def test_a_missing_node_times_out(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError, match="node b did not reach step"):
        node(tmp_path, "a").meet("step", timeout=0.3)


def test_qemu_options_pair_the_nodes(tmp_path: Path) -> None:
    disks = [tmp_path / "one.img", tmp_path / "two.img"]
    a = twonode.qemu_options("a", 5555, disks)
    b = twonode.qemu_options("b", 5555, disks)
    assert "listen=127.0.0.1:5555" in a and "connect=127.0.0.1:5555" in b
    assert "mac=52:54:00:00:00:0a" in a and "mac=52:54:00:00:00:0b" in b
    for options in (a, b):
        assert options.count("file.locking=off") == 2 and options.count("cache=none") == 2
        assert "serial=o2cbtn1" in options and "serial=o2cbtn2" in options


def test_listening_reads_proc_without_connecting() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        assert not twonode.listening(port)
        server.listen(1)
        assert twonode.listening(port)


def test_cluster_conf_names_both_nodes() -> None:
    text = twonode_guest.cluster_conf()
    assert text.count("node:") == 2
    for name, address, number in twonode_guest.NODES.values():
        assert f"name = {name}" in text and f"ip_address = {address}" in text
        assert f"number = {number}" in text


def test_missing_ip_skips_outside_ci_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(twonode.harness, "missing_prerequisites", lambda kernel=None: [])
    real_which = twonode.shutil.which
    monkeypatch.setattr(
        twonode.shutil, "which", lambda name, *a, **k: None if name == "ip" else real_which(name)
    )
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="iproute2"):
        twonode.require_pair()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="iproute2"):
        twonode.require_pair()
