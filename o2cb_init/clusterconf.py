"""/etc/ocfs2/cluster.conf: the o2cb cluster layout, parsed as data.

The format is stanzas: a line ``cluster:`` or ``node:`` (or ``heartbeat:``)
at the start of a line, followed by indented ``key = value`` lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError
from .system import System

CLUSTER_CONF = "/etc/ocfs2/cluster.conf"


@dataclass(frozen=True)
class NodeConf:
    name: str
    cluster: str
    number: int
    ip_address: str
    ip_port: int


@dataclass(frozen=True)
class ClusterConf:
    name: str
    node_count: int
    heartbeat_mode: str = "local"
    nodes: tuple[NodeConf, ...] = field(default=())

    def local_node(self, hostname: str) -> NodeConf | None:
        return next((node for node in self.nodes if node.name == hostname), None)


@dataclass
class _Stanza:
    kind: str
    line: int
    values: dict[str, str]


def _stanzas(text: str, path: str) -> list[_Stanza]:
    stanzas: list[_Stanza] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not raw[0].isspace():
            if not line.endswith(":"):
                raise ConfigError(f"{path}:{number}: expected a stanza header such as 'node:'")
            stanzas.append(_Stanza(line[:-1].strip(), number, {}))
            continue
        if not stanzas:
            raise ConfigError(f"{path}:{number}: value outside of a stanza")
        key, sep, value = line.strip().partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected 'key = value'")
        stanzas[-1].values[key.strip()] = value.strip()
    return stanzas


def _require(stanza: _Stanza, key: str, path: str) -> str:
    value = stanza.values.get(key, "")
    if not value:
        raise ConfigError(f"{path}:{stanza.line}: {stanza.kind} stanza has no {key}")
    return value


def _integer(stanza: _Stanza, key: str, path: str) -> int:
    value = _require(stanza, key, path)
    try:
        return int(value)
    except ValueError:
        raise ConfigError(
            f"{path}:{stanza.line}: {stanza.kind} {key} '{value}' is not a number"
        ) from None


def parse(text: str, path: str = CLUSTER_CONF) -> dict[str, ClusterConf]:
    """Clusters by name, each with its nodes."""
    clusters: dict[str, ClusterConf] = {}
    nodes: list[tuple[_Stanza, NodeConf]] = []
    for stanza in _stanzas(text, path):
        if stanza.kind == "cluster":
            name = _require(stanza, "name", path)
            clusters[name] = ClusterConf(
                name=name,
                node_count=_integer(stanza, "node_count", path),
                heartbeat_mode=stanza.values.get("heartbeat_mode", "local"),
            )
        elif stanza.kind == "node":
            node = NodeConf(
                name=_require(stanza, "name", path),
                cluster=_require(stanza, "cluster", path),
                number=_integer(stanza, "number", path),
                ip_address=_require(stanza, "ip_address", path),
                ip_port=_integer(stanza, "ip_port", path),
            )
            nodes.append((stanza, node))
    for stanza, node in nodes:
        if node.cluster not in clusters:
            raise ConfigError(
                f"{path}:{stanza.line}: node {node.name} names unknown cluster {node.cluster}"
            )
        cluster = clusters[node.cluster]
        clusters[node.cluster] = ClusterConf(
            cluster.name, cluster.node_count, cluster.heartbeat_mode, (*cluster.nodes, node)
        )
    return clusters


def load(system: System, path: str = CLUSTER_CONF) -> dict[str, ClusterConf]:
    text = system.read_optional(path)
    if text is None:
        raise ConfigError(f"{path}: not found; the o2cb stack needs a cluster layout")
    return parse(text, path)
