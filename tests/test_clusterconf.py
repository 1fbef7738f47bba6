"""cluster.conf: stanzas parsed strictly, every problem with its file and line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from o2cb_init import clusterconf
from o2cb_init.clusterconf import CLUSTER_CONF, ClusterConf, NodeConf
from o2cb_init.errors import ConfigError
from o2cb_init.system import System

GOOD = """\
# two nodes
cluster:
\tnode_count = 2
\theartbeat_mode = local
\tname = ocfs2

node:
\tip_port = 7777
\tip_address = 10.0.0.1
\tnumber = 0
\tname = node-a.example
\tcluster = ocfs2

node:
        ip_port = 7778
        ip_address = 10.0.0.2   # the second one
        number = 1
        name = node_b
        cluster = ocfs2

heartbeat:
\tregion = 77D95EF51C0149D2823674FCC162CF8B
\tcluster = ocfs2
"""


def test_parses_clusters_nodes_and_regions() -> None:
    clusters = clusterconf.parse(GOOD)
    assert list(clusters) == ["ocfs2"]
    cluster = clusters["ocfs2"]
    assert cluster == ClusterConf(
        "ocfs2",
        2,
        "local",
        (
            NodeConf("node-a.example", "ocfs2", 0, "10.0.0.1", 7777),
            NodeConf("node_b", "ocfs2", 1, "10.0.0.2", 7778),
        ),
        ("77D95EF51C0149D2823674FCC162CF8B",),
    )
    assert cluster.local_node("node_b") == cluster.nodes[1]
    assert cluster.local_node("nobody") is None
    assert cluster.nodes[1].line == 14


def test_heartbeat_mode_defaults_to_local_and_global_is_accepted() -> None:
    text = "cluster:\n\tname = a\n\tnode_count = 0\ncluster:\n\tname = b\n\tnode_count = 0\n" \
        "\theartbeat_mode = global\n"
    clusters = clusterconf.parse(text)
    assert clusters["a"].heartbeat_mode == "local"
    assert clusters["b"].heartbeat_mode == "global"


BAD = [
    # (replace this, with that, line, reason)
    ("\tname = ocfs2\n", "\tname = my/cluster\n", 5, "cluster name 'my/cluster' is invalid"),
    ("\tname = ocfs2\n", "\tname = abcdefghijklmnopq\n", 5, "is invalid"),
    ("\tname = ocfs2\n", "\tname =\n", 5, "cluster stanza has no name"),
    ("\tnode_count = 2\n", "\tnode_count = two\n", 3, "node_count 'two' is not a number"),
    ("\theartbeat_mode = local\n", "\theartbeat_mode = disk\n", 4, "heartbeat_mode 'disk'"),
    ("\tnumber = 0\n", "\tnumber = 255\n", 10, "number 255 is out of range (0 to 254)"),
    ("\tnumber = 0\n", "\tnumber = -1\n", 10, "number '-1' is not a number"),
    ("\tnumber = 0\n", "", 7, "node stanza has no number"),
    ("\tip_port = 7777\n", "\tip_port = 0\n", 8, "ip_port 0 is out of range (1 to 65534)"),
    ("\tip_port = 7777\n", "\tip_port = 65535\n", 8, "ip_port 65535 is out of range"),
    ("\tip_port = 7777\n", "\tip_port = 65536\n", 8, "out of range"),
    ("\tip_port = 7777\n", f"\tip_port = {'9' * 5000}\n", 8,
     f"ip_port {'9' * 40}... (5000 bytes) is out of range (1 to 65534)"),
    ("\tnumber = 0\n", f"\tnumber = {'1' * 100_000}\n", 10, "(100000 bytes) is out of range"),
    ("\tip_address = 10.0.0.1\n", "\tip_address = 10.0.0\n", 9, "not an IPv4 address"),
    ("\tip_address = 10.0.0.1\n", "\tip_address = 10.0.0.256\n", 9, "not an IPv4 address"),
    ("\tip_address = 10.0.0.1\n", "\tip_address = ::1\n", 9, "not an IPv4 address"),
    ("\tname = node-a.example\n", "\tname = -bad\n", 11, "not a valid host name"),
    ("\tcluster = ocfs2\n\nnode", "\tcluster = other\n\nnode", 12, "names unknown cluster other"),
    ("\tregion = 77D95EF51C0149D2823674FCC162CF8B\n", "\tregion = zz\n", 22,
     "not a heartbeat region id"),
    ("heartbeat:\n", "heartbeats:\n", 21, "unknown stanza 'heartbeats:'"),
    ("cluster:\n", "cluster\n", 2, "expected a stanza header"),
    ("\tnumber = 0\n", "number = 0\n", 10, "expected a stanza header"),
    ("\tnumber = 0\n", "\tnumber 0\n", 10, "expected 'key = value'"),
    ("\tnumber = 0\n", "\tnumber = 0\n\tnumber = 3\n", 11, "duplicate number"),
    ("# two nodes\n", "\tname = x\n", 1, "setting outside of a stanza"),
    # duplicates inside one cluster
    ("        number = 1\n", "        number = 0\n", 14,
     "number 0 is already used by node node-a.example"),
    ("ip_address = 10.0.0.2   # the second one\n", "ip_address = 10.0.0.1\n", 14,
     "ip_address 10.0.0.1 is already used"),
    ("name = node_b\n", "name = node-a.example\n", 14, "name node-a.example is already used"),
]


@pytest.mark.parametrize(("old", "new", "line", "reason"), BAD)
def test_invalid_layout_names_file_line_and_reason(
    old: str, new: str, line: int, reason: str
) -> None:
    assert old in GOOD
    with pytest.raises(ConfigError) as caught:
        clusterconf.parse(GOOD.replace(old, new, 1), "/etc/ocfs2/cluster.conf")
    message = caught.value.message
    assert message.startswith(f"/etc/ocfs2/cluster.conf:{line}: "), message
    assert reason in message
    assert "\n" not in message
    assert len(message) < 200
    assert caught.value.exit_code == 6


def test_same_cluster_twice_is_an_error() -> None:
    text = GOOD + "cluster:\n\tname = ocfs2\n\tnode_count = 0\n"
    with pytest.raises(ConfigError, match=r"cluster.conf:25: cluster ocfs2 is defined twice"):
        clusterconf.parse(text, "cluster.conf")


def test_same_number_in_different_clusters_is_fine() -> None:
    text = GOOD + (
        "cluster:\n\tname = other\n\tnode_count = 1\n"
        "node:\n\tname = node_c\n\tcluster = other\n\tnumber = 0\n"
        "\tip_address = 10.0.0.1\n\tip_port = 7777\n"
    )
    clusters = clusterconf.parse(text)
    assert [node.name for node in clusters["other"].nodes] == ["node_c"]


@pytest.fixture
def system(tmp_path: Path) -> System:
    return System(root=str(tmp_path))


def put(system: System, data: bytes) -> Path:
    real = Path(system.path(CLUSTER_CONF))
    real.parent.mkdir(parents=True, exist_ok=True)
    real.write_bytes(data)
    return real


def test_load_reads_under_root(system: System) -> None:
    put(system, GOOD.encode())
    assert clusterconf.load(system)["ocfs2"].node_count == 2


def test_load_missing_file(system: System) -> None:
    with pytest.raises(ConfigError) as caught:
        clusterconf.load(system)
    assert caught.value.message.startswith(f"{CLUSTER_CONF}: not found")


@pytest.mark.parametrize("data", [b"cluster:\n\tname = a\x00b\n", b"cluster:\n\tname = \xff\n"])
def test_load_refuses_binary_content(system: System, data: bytes) -> None:
    put(system, data)
    with pytest.raises(ConfigError) as caught:
        clusterconf.load(system)
    assert caught.value.message.startswith(f"{CLUSTER_CONF}:2: binary content")


def test_real_root_refuses_a_group_writable_layout(tmp_path: Path) -> None:
    real = tmp_path / "cluster.conf"
    real.write_text(GOOD)
    real.chmod(0o664)
    with pytest.raises(ConfigError) as caught:
        clusterconf.load(System(root="/"), str(real))
    assert "refusing to use it" in caught.value.message
    assert "writable by group or others" in caught.value.message or os.geteuid() != 0


LAYOUT = clusterconf.parse(GOOD)["ocfs2"]


@pytest.mark.parametrize(
    ("hostname", "node"),
    [
        ("node_b", "node_b"),
        ("NODE_B", "node_b"),
        ("node_b.example.com", "node_b"),
        ("Node_B.Example.COM", "node_b"),
        ("node-a.example", "node-a.example"),
        ("node-a.example.com", "node-a.example"),
        ("node-a", None),  # the host name must hold the whole node name
        ("node_bx", None),
        ("node_b-2.example.com", None),
        ("xnode_b", None),
        ("", None),
    ],
)
def test_local_node_matches_the_host_name_up_to_a_dot_ignoring_case(
    hostname: str, node: str | None
) -> None:
    found = LAYOUT.local_node(hostname)
    assert (found.name if found else None) == node


def test_load_parses_a_text_once_and_sees_every_change(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_parse = clusterconf.parse

    def counting(text: str, path: str = CLUSTER_CONF) -> dict[str, clusterconf.ClusterConf]:
        calls.append(text)
        return real_parse(text, path)

    monkeypatch.setattr(clusterconf, "parse", counting)
    text = GOOD + "cluster:\n\tname = once\n\tnode_count = 0\n"
    put(system, text.encode())
    first = clusterconf.load(system)
    first.pop("ocfs2")  # the caller's dict is its own
    assert clusterconf.load(system)["ocfs2"].node_count == 2
    assert calls == [text]
    put(system, text.replace("node_count = 0", "node_count = 1").encode())
    assert clusterconf.load(system)["once"].node_count == 1
    assert len(calls) == 2
