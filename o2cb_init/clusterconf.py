"""/etc/ocfs2/cluster.conf: the o2cb cluster layout, parsed strictly as data.

The format is stanzas: a line ``cluster:``, ``node:`` or ``heartbeat:`` at
the start of a line, followed by indented ``key = value`` lines::

    cluster:
            name = ocfs2
            node_count = 2
            heartbeat_mode = local

    node:
            name = node1
            cluster = ocfs2
            number = 0
            ip_address = 10.0.0.1
            ip_port = 7777

Every problem is a ConfigError naming the file and the line.
"""

from __future__ import annotations

import functools
import re

from .config import CLUSTER_NAME_RULE, bounded_int, read_protected, valid_cluster_name
from .errors import ConfigError, shown
from .records import dataclass, field, replace
from .system import System

CLUSTER_CONF = "/etc/ocfs2/cluster.conf"

NODE_NUMBER_MAX = 254  # the kernel refuses 255 and above (ERANGE)
IP_PORT_MAX = 65534  # the kernel refuses 0 (EINVAL) and 65535 and above (ERANGE)
NODE_NAME_MAX = 64  # O2NM_MAX_NAME_LEN
HEARTBEAT_MODES = ("local", "global")
KINDS = ("cluster", "node", "heartbeat")


@dataclass(frozen=True)
class NodeConf:
    name: str
    cluster: str
    number: int
    ip_address: str
    ip_port: int
    line: int = field(default=0, compare=False)  # where its stanza starts


@dataclass(frozen=True)
class ClusterConf:
    name: str
    node_count: int
    heartbeat_mode: str = "local"
    nodes: tuple[NodeConf, ...] = field(default=())
    heartbeat_regions: tuple[str, ...] = field(default=())  # global heartbeat devices
    line: int = field(default=0, compare=False)

    def local_node(self, hostname: str) -> NodeConf | None:
        """The node that is this host, matched as ocfs2-tools' o2cb tool matches it.

        A node is this host when its name equals the host name up to a dot,
        ignoring case: node ``node1`` is host ``Node1`` or ``node1.example.com``
        (and node ``localhost`` is host ``localhost.localdomain``).
        """
        host = hostname.lower()
        for node in self.nodes:
            name = node.name.lower()
            if host == name or host.startswith(name + "."):
                return node
        return None


@dataclass
class _Stanza:
    kind: str
    line: int
    values: dict[str, tuple[str, int]]  # key -> (value, line)


_HEADER = re.compile(r"(?P<kind>[A-Za-z_]+):[ \t]*(?:#.*)?")
_SETTING = re.compile(r"[ \t]+(?P<key>[A-Za-z_]+)[ \t]*=[ \t]*(?P<value>[^#]*?)[ \t]*(?:#.*)?")


def _stanzas(text: str, path: str) -> list[_Stanza]:
    stanzas: list[_Stanza] = []
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{path}:{number}"
        if not line[0].isspace():
            header = _HEADER.fullmatch(line)
            if header is None:
                raise ConfigError(
                    f"{where}: expected a stanza header such as 'node:', found '{shown(stripped)}'"
                )
            kind = header["kind"]
            if kind not in KINDS:
                raise ConfigError(
                    f"{where}: unknown stanza '{shown(kind)}:' (expected {', '.join(KINDS)})"
                )
            stanzas.append(_Stanza(kind, number, {}))
            continue
        if not stanzas:
            raise ConfigError(f"{where}: setting outside of a stanza")
        setting = _SETTING.fullmatch(line)
        if setting is None:
            raise ConfigError(f"{where}: expected 'key = value', found '{shown(stripped)}'")
        key, value = setting["key"], setting["value"]
        stanza = stanzas[-1]
        if key in stanza.values:
            raise ConfigError(
                f"{where}: duplicate {shown(key)} in this {stanza.kind} stanza"
                f" (already set on line {stanza.values[key][1]})"
            )
        stanza.values[key] = (value, number)
    return stanzas


class _Reader:
    """Typed access to one stanza's values, each error naming the right line."""

    def __init__(self, stanza: _Stanza, path: str) -> None:
        self.stanza = stanza
        self.path = path

    def fail(self, key: str, reason: str) -> ConfigError:
        line = self.stanza.values.get(key, ("", self.stanza.line))[1]
        return ConfigError(f"{self.path}:{line}: {self.stanza.kind} {reason}")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.stanza.values.get(key, ("", 0))[0]
        if value:
            return value
        if default is not None:
            return default
        raise self.fail(key, f"stanza has no {key}")

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.text(key)
        try:
            return bounded_int(value, low, high)
        except ValueError as error:
            raise self.fail(key, f"{key} {error}") from None


def _cluster(reader: _Reader) -> ClusterConf:
    name = reader.text("name")
    if not valid_cluster_name(name):
        raise reader.fail(
            "name", f"name '{shown(name)}' is invalid ({CLUSTER_NAME_RULE})"
        )
    mode = reader.text("heartbeat_mode", "local")
    if mode not in HEARTBEAT_MODES:
        raise reader.fail(
            "heartbeat_mode",
            f"heartbeat_mode '{shown(mode)}' is not {' or '.join(HEARTBEAT_MODES)}",
        )
    return ClusterConf(
        name=name,
        node_count=reader.integer("node_count", 0, NODE_NUMBER_MAX + 1),
        heartbeat_mode=mode,
        line=reader.stanza.line,
    )


_NODE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{NODE_NAME_MAX - 1}}}")
# Dotted decimal as ipaddress.IPv4Address takes it: four octets 0-255, ASCII
# digits, no leading zeros.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _node(reader: _Reader) -> NodeConf:
    name = reader.text("name")
    if not _NODE_NAME.fullmatch(name):
        raise reader.fail("name", f"name '{shown(name)}' is not a valid host name")
    address = reader.text("ip_address")
    if not _IPV4.fullmatch(address):
        raise reader.fail("ip_address", f"ip_address '{shown(address)}' is not an IPv4 address")
    return NodeConf(
        name=name,
        cluster=reader.text("cluster"),
        number=reader.integer("number", 0, NODE_NUMBER_MAX),
        ip_address=address,
        ip_port=reader.integer("ip_port", 1, IP_PORT_MAX),
        line=reader.stanza.line,
    )


class _Members:
    """The nodes and regions of one cluster as they are read, each node checked
    for a name, number and address no earlier node of the cluster has (one
    lookup per key, so a 255-node layout costs no more per node than a small one)."""

    def __init__(self, cluster: ClusterConf, path: str) -> None:
        self.cluster = cluster
        self.path = path
        self.nodes: list[NodeConf] = []
        self.regions: list[str] = []
        self.seen: dict[tuple[str, object], NodeConf] = {}

    def add_node(self, node: NodeConf) -> None:
        keys = (("name", node.name), ("number", node.number), ("ip_address", node.ip_address))
        for key in keys:
            other = self.seen.get(key)
            if other is not None:
                what, mine = key
                raise ConfigError(
                    f"{self.path}:{node.line}: node {node.name}: {what} {mine} is already used"
                    f" by node {other.name} (line {other.line}) in cluster {self.cluster.name}"
                )
        for key in keys:
            self.seen[key] = node
        self.nodes.append(node)

    def result(self) -> ClusterConf:
        return replace(self.cluster, nodes=tuple(self.nodes),
                       heartbeat_regions=tuple(self.regions))


def parse(text: str, path: str = CLUSTER_CONF) -> dict[str, ClusterConf]:
    """Clusters by name, each with its nodes; ConfigError (file:line) on any problem."""
    clusters: dict[str, _Members] = {}
    members: list[tuple[_Reader, str]] = []
    for stanza in _stanzas(text, path):
        reader = _Reader(stanza, path)
        if stanza.kind == "cluster":
            cluster = _cluster(reader)
            if cluster.name in clusters:
                raise reader.fail(
                    "name",
                    f"{cluster.name} is defined twice (first on line"
                    f" {clusters[cluster.name].cluster.line})",
                )
            clusters[cluster.name] = _Members(cluster, path)
        else:
            members.append((reader, reader.text("cluster")))
    for reader, name in members:
        if name not in clusters:
            raise reader.fail("cluster", f"names unknown cluster {shown(name)}")
        if reader.stanza.kind == "node":
            clusters[name].add_node(_node(reader))
        else:  # heartbeat: a global heartbeat region
            region = reader.text("region")
            if not re.fullmatch(r"[0-9A-Fa-f]{1,64}", region):
                raise reader.fail(
                    "region", f"region '{shown(region)}' is not a heartbeat region id"
                )
            clusters[name].regions.append(region)
    return {name: built.result() for name, built in clusters.items()}


@functools.lru_cache(maxsize=4)
def _parsed(text: str, path: str) -> tuple[tuple[str, ClusterConf], ...]:
    return tuple(parse(text, path).items())


def load(system: System, path: str = CLUSTER_CONF) -> dict[str, ClusterConf]:
    """The layout in PATH.  The file is read at every call, but a text already
    parsed (the same run asking again) is not parsed twice."""
    text = read_protected(system, path, "the o2cb stack needs a cluster layout")
    return dict(_parsed(text, path))
