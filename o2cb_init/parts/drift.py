"""How the running o2nm cluster differs from the files, and what the kernel lets change online.

Measured on Debian's kernels (doc/kernel-measurements.md, section 3): a node
can be added (mkdir, then its address, port and number) and an idle node
removed while the cluster runs, even under a mounted volume; a node's
address, port, number and ``local`` cannot be written a second time
(EBUSY); the idle timeout and keepalive delay are refused while a peer is
connected, and the dead threshold and the heartbeat mode are ignored while
a region runs.  So `reload` applies added and removed nodes and, in global
mode, started and stopped regions; everything else is "restart needed".

Removing a node that heartbeats or is connected would drop its o2net link
while its heartbeat goes on, and the nodes would fence: it needs a restart.
Liveness and connections are read from debugfs (o2hb/livenodes,
o2net/connected_nodes), when it is mounted.

The record of what start applied (``Applied``) tells a cluster that lacks
what its own start made (partial) from one whose files moved on since
(pending): /run/o2cb/applied, written at the end of each online or reload.
"""

from __future__ import annotations

from ..clusterconf import ClusterConf, NodeConf
from ..configfs import Cluster
from ..records import dataclass, field
from .o2nm import pending_regions, removed_regions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..system import System
    from .o2nm import O2nmCluster

DEBUGFS = "/sys/kernel/debug"
LIVE_NODES = f"{DEBUGFS}/o2hb/livenodes"
CONNECTED_NODES = f"{DEBUGFS}/o2net/connected_nodes"
APPLIED_FILE = "/run/o2cb/applied"

RELOAD_APPLIES = "reload applies"
RESTART_NEEDED = "restart needed"


def node_numbers(system: System, path: str) -> set[int] | None:
    """The node numbers a debugfs file lists; None when it is not there."""
    text = system.read_attribute(path)
    if text is None:
        return None
    return {int(word) for word in text.split() if word.isdigit()}


def region_live_nodes(system: System, uuid: str) -> set[int] | None:
    return node_numbers(system, f"{DEBUGFS}/o2hb/{uuid}/livenodes")


@dataclass(frozen=True)
class Difference:
    """One way the running cluster differs from the files."""

    subject: str  # "node node3", "idle_timeout_ms", "heartbeat mode"
    change: str  # "is in cluster.conf but not running", "20000 -> 40000"
    online: bool  # reload applies it
    reason: str = ""  # why it cannot change online

    def text(self) -> str:
        if self.online:
            return f"{self.subject} {self.change}: {RELOAD_APPLIES}"
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.subject} {self.change}: {RESTART_NEEDED}{why}"

    def as_data(self) -> dict[str, object]:
        return {"subject": self.subject, "change": self.change, "online": self.online,
                "reason": self.reason, "text": self.text()}


@dataclass
class Drift:
    """What reload would do, and what it cannot."""

    add_nodes: list[NodeConf] = field(default_factory=list)
    remove_nodes: list[str] = field(default_factory=list)
    start_regions: list[str] = field(default_factory=list)
    stop_regions: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)

    @property
    def refusals(self) -> list[Difference]:
        return [difference for difference in self.differences if not difference.online]

    def __bool__(self) -> bool:
        return bool(self.differences)


def drift(o2nm: O2nmCluster, target: Cluster, layout: ClusterConf, mounted: bool) -> Drift:
    """How the running ``target`` differs from ``layout`` and the configured timeouts.

    ``mounted``: an OCFS2 volume is mounted, so no global region may stop.
    """
    system = o2nm.system
    result = Drift()
    add = result.differences.append
    running = {node.name: node for node in target.nodes()}
    live = node_numbers(system, LIVE_NODES) or set()
    connected = node_numbers(system, CONNECTED_NODES) or set()
    numbers = {node.read("num"): name for name, node in running.items()}
    addresses = {node.read("ipv4_address"): name for name, node in running.items()}
    wanted = {node.name for node in layout.nodes}
    for node_conf in layout.nodes:
        node = running.get(node_conf.name)
        subject = f"node {node_conf.name}"
        if node is None:
            clash = numbers.get(str(node_conf.number))
            clash_address = addresses.get(node_conf.ip_address)
            if clash and clash not in wanted:
                add(Difference(subject, f"takes number {node_conf.number} of running node "
                               f"{clash}", False, "a live node's number cannot change online"))
            elif clash_address and clash_address not in wanted:
                add(Difference(subject, f"takes address {node_conf.ip_address} of running node "
                               f"{clash_address}", False,
                               "a live node's address cannot change online"))
            else:
                result.add_nodes.append(node_conf)
                add(Difference(subject, "is in cluster.conf but not running", True))
            continue
        for attribute, value in (("num", node_conf.number), ("ipv4_address", node_conf.ip_address),
                                 ("ipv4_port", node_conf.ip_port)):
            current = node.read(attribute)
            if current != str(value):
                add(Difference(subject, f"{attribute} {current} -> {value}", False,
                               "the kernel takes a node's number, address and port once"))
    for name, node in running.items():
        if name in wanted:
            continue
        number = node.read_int("num")
        subject = f"node {name}"
        if node.is_local:
            add(Difference(subject, "is this host's running node and not in cluster.conf",
                           False, "this node's own entry cannot be removed online"))
        elif number in live or number in connected:
            add(Difference(subject, "is no longer in cluster.conf", False,
                           "it heartbeats or is connected: removing it would drop its link"
                           " and fence"))
        else:
            result.remove_nodes.append(name)
            add(Difference(subject, "is no longer in cluster.conf", True))
    for name, values in o2nm.pending_timeouts(target).items():
        add(Difference(name, f"{values['running']} -> {values['configured']}", False,
                       "timeouts are agreed with the peers at connection"))
    mode = "global" if target.heartbeat.read("mode") == "global" else "local"
    if mode != layout.heartbeat_mode:
        add(Difference("heartbeat mode", f"{mode} -> {layout.heartbeat_mode}", False,
                       "the mode is taken only while no region runs"))
        return result
    for uuid in pending_regions(target, layout):
        result.start_regions.append(uuid)
        add(Difference(f"heartbeat region {uuid}", "is in cluster.conf but not running", True))
    for uuid in removed_regions(target, layout):
        if mounted:
            add(Difference(f"heartbeat region {uuid}", "is no longer in cluster.conf", False,
                           "an OCFS2 volume is mounted: unmount it, then reload"))
        else:
            result.stop_regions.append(uuid)
            add(Difference(f"heartbeat region {uuid}", "is no longer in cluster.conf", True))
    return result


# -- what start applied ---------------------------------------------------------


def applied_text(layout: ClusterConf) -> str:
    """The record of a layout: one fact a line, words without blanks."""
    lines = [f"cluster {layout.name}", f"mode {layout.heartbeat_mode}"]
    lines += [f"node {node.name} {node.number} {node.ip_address} {node.ip_port}"
              for node in layout.nodes]
    lines += [f"region {uuid.upper()}" for uuid in layout.heartbeat_regions]
    return "\n".join(lines) + "\n"


def read_applied(system: System, name: str) -> ClusterConf | None:
    """The layout the last online or reload of cluster ``name`` applied, if recorded."""
    text = system.read_optional(APPLIED_FILE)
    if not text:
        return None
    cluster, mode = "", "local"
    nodes: list[NodeConf] = []
    regions: list[str] = []
    try:
        for line in text.splitlines():
            words = line.split()
            if not words:
                continue
            if words[0] == "cluster":
                cluster = words[1]
            elif words[0] == "mode":
                mode = words[1]
            elif words[0] == "node":
                nodes.append(NodeConf(words[1], name, int(words[2]), words[3], int(words[4])))
            elif words[0] == "region":
                regions.append(words[1])
    except (IndexError, ValueError):
        return None  # a damaged record: as if there were none
    if cluster != name:
        return None
    return ClusterConf(name, len(nodes), mode, tuple(nodes), tuple(regions))
