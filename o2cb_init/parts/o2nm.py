"""The o2nm cluster in configfs: build it from a layout, check it, take it down.

"Online" means complete: the cluster exists with every node of its layout
and their attributes, `local` set on this host's node and the heartbeat
mode of the layout, with every global heartbeat region running in global
mode.  A cluster that lacks any of these (a start killed half-way, a race
before the lock existed) is partial: status says what is missing, and
online finishes it by building it anew (or, while a heartbeat region is
active, refuses to touch it).  Nodes and regions added to cluster.conf
since the cluster came online are added to it by the next online, as the
o2cb tool does, without taking it down; regions removed since are stopped
then (parts/regions.py), and until then they do not make it partial.

Timeouts are not part of completeness: online writes them before `local=1`,
so a cluster with its local node marked has had them written.  Timeouts
edited in the configuration since are pending: status names them, and a
restart applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .. import clusterconf
from ..clusterconf import ClusterConf, NodeConf
from ..config import Settings
from ..configfs import Cluster, Configfs
from ..errors import ConfigError, O2cbError, StepError
from ..kernel import LEGACY_THRESHOLD_FILE, Generation, Kernel
from ..report import Outcome, Reporter
from ..status import StatusReport
from ..system import System

HEARTBEAT_STILL_ACTIVE = "Unable to stop cluster as heartbeat region still active"
LIVE_NODES = "/sys/kernel/debug/o2hb/livenodes"
NODE_LACKING = "node "
REGION_LACKING = "heartbeat region "
GLOBAL_MODE_LACKING = "heartbeat mode global"


def pending_regions(target: Cluster, layout: ClusterConf) -> list[str]:
    """Global heartbeat regions of the layout that do not run (none in local mode).

    configfs names a region by its volume's UUID in upper case, as the
    kernel's mount looks it up.
    """
    if layout.heartbeat_mode != "global":
        return []
    names = [uuid.upper() for uuid in layout.heartbeat_regions]
    return [uuid for uuid in names if not target.region(uuid).running]


def removed_regions(target: Cluster, layout: ClusterConf) -> list[str]:
    """Regions running in global mode that the layout no longer names.

    They are not a lack: a cluster running one is still complete.
    """
    if layout.heartbeat_mode != "global" or target.heartbeat.read("mode") != "global":
        return []
    names = {uuid.upper() for uuid in layout.heartbeat_regions}
    return [uuid for uuid in target.heartbeat_regions() if uuid.upper() not in names]


@dataclass
class O2nmCluster:
    """The o2nm cluster of one stack; ``from_layout``: built from cluster.conf."""

    system: System
    kernel: Kernel
    report: Reporter
    settings: Settings
    from_layout: bool = True
    # False when the settings are not from a valid config: no pending timeouts to show.
    check_timeouts: bool = True

    @property
    def configfs(self) -> Configfs:
        return Configfs(self.system, self.kernel.configfs_mountpoint())

    def cluster(self, name: str) -> Cluster:
        return self.configfs.cluster(name)

    # -- the layout ------------------------------------------------------------

    def layout(self, name: str) -> ClusterConf:
        """The cluster in cluster.conf, with this host in it (ConfigError, exit 6, if not)."""
        clusters = clusterconf.load(self.system)
        if name not in clusters:
            raise ConfigError(f"Cluster {name} is not defined in {clusterconf.CLUSTER_CONF}")
        layout = clusters[name]
        self.local_node_name(layout)
        return layout

    def local_node_name(self, layout: ClusterConf) -> str:
        hostname = self.system.hostname()
        node = layout.local_node(hostname)
        if node is None:
            raise ConfigError(
                f"This node ({hostname}) is not a node of cluster {layout.name} "
                f"in {clusterconf.CLUSTER_CONF}"
            )
        return node.name

    def check(self, name: str) -> None:
        """Before anything changes: the layout must name the cluster and this host."""
        if self.from_layout:
            self.layout(name)

    # -- completeness -------------------------------------------------------------

    def missing(self, name: str) -> list[str]:
        """What the cluster in configfs lacks; empty when it is complete."""
        target = self.cluster(name)
        if not target.exists():
            return ["the cluster"]
        try:
            layout = self.layout(name) if self.from_layout else None
        except O2cbError:
            layout = None  # status and stop never depend on the configuration
        problems: list[str] = []
        if layout is None:
            if self.from_layout and not any(node.is_local for node in target.nodes()):
                problems.append("a local node")
            return problems
        for node_conf in layout.nodes:
            node = target.node(node_conf.name)
            if not node.exists():
                problems.append(f"node {node_conf.name}")
                continue
            expected = {
                "num": str(node_conf.number),
                "ipv4_address": node_conf.ip_address,
                "ipv4_port": str(node_conf.ip_port),
            }
            for attribute, value in expected.items():
                if node.read(attribute) != value:
                    problems.append(f"{attribute}={value} on node {node_conf.name}")
        local = target.node(self.local_node_name(layout))
        if local.exists() and not local.is_local:
            problems.append(f"local=1 on node {local.name}")
        mode = target.heartbeat.read("mode")
        if layout.heartbeat_mode == "local" and mode not in (None, "local"):
            problems.append("heartbeat mode local")
        if layout.heartbeat_mode == "global" and mode != "global":
            problems.append(GLOBAL_MODE_LACKING)
        problems.extend(f"{REGION_LACKING}{uuid}" for uuid in pending_regions(target, layout))
        return problems

    def pending_timeouts(self, target: Cluster) -> dict[str, dict[str, int | None]]:
        """Timeouts whose configured value differs from the running one."""
        if not self.check_timeouts:
            return {}
        settings = self.settings
        configured = {
            "heartbeat/dead_threshold": settings.heartbeat_threshold,
            "idle_timeout_ms": settings.idle_timeout_ms,
            "keepalive_delay_ms": settings.keepalive_delay_ms,
            "reconnect_delay_ms": settings.reconnect_delay_ms,
        }
        pending: dict[str, dict[str, int | None]] = {}
        for attribute, value in configured.items():
            running = target.read(attribute)
            if running is not None and running != str(value):
                pending[attribute.rsplit("/", 1)[-1]] = {
                    "configured": value,
                    "running": int(running) if running.isdigit() else None,
                }
        return pending

    def is_online(self, name: str) -> bool:
        return not self.missing(name)

    # -- online --------------------------------------------------------------

    def online(self, name: str,
               set_mode: Callable[[Cluster, ClusterConf], None] | None = None,
               regions_to_stop: bool = False) -> Outcome:
        """Build the cluster from cluster.conf; finish a partial one by building it anew.

        ``set_mode`` gives the kernel the heartbeat mode once the cluster
        exists and before any global heartbeat region does.  Regions are not
        started here: a cluster that lacks only running regions is left as is.
        ``regions_to_stop``: regions removed from the layout will be stopped
        next, so a complete cluster is not "already online".
        """
        target = self.cluster(name)
        if target.exists():
            problems = self.missing(name)
            if not problems:
                if not regions_to_stop:
                    self.report.line(f"Cluster {name} already online")
                return Outcome.ALREADY
            layout = self.layout(name)
            additions = self.additions(layout, problems)
            if additions is not None:
                return self.extend(target, layout, additions, problems, set_mode)
            self.remove_partial(target, problems)
        layout = self.layout(name)
        local_name = self.local_node_name(layout)
        @self.report.step(f'Registering O2CB cluster "{name}"')
        def _() -> None:
            self.register(target, layout)
            if set_mode is not None:
                set_mode(target, layout)

        @self.report.step("Setting O2CB cluster timeouts ")
        def _() -> None:
            self.set_timeouts(target)
            # Last: local=1 starts o2net, and a peer that connects first
            # would freeze the idle timeout the kernel will negotiate.
            target.node(local_name).set_local()
        return Outcome.DONE

    def additions(self, layout: ClusterConf, problems: list[str]) -> list[NodeConf] | None:
        """The nodes to add when all the cluster lacks is new nodes, the global mode
        or running regions; None when it must be built anew."""
        by_name = {node.name: node for node in layout.nodes}
        local_name = self.local_node_name(layout)
        nodes = []
        for problem in problems:
            if problem == GLOBAL_MODE_LACKING or problem.startswith(REGION_LACKING):
                continue
            name = problem[len(NODE_LACKING):] if problem.startswith(NODE_LACKING) else ""
            if name not in by_name or name == local_name:
                return None
            nodes.append(by_name[name])
        return nodes

    def extend(self, target: Cluster, layout: ClusterConf, nodes: list[NodeConf],
               problems: list[str],
               set_mode: Callable[[Cluster, ClusterConf], None] | None) -> Outcome:
        """Add the nodes (and the mode) a complete cluster lacks, as a re-online does."""
        if not nodes and GLOBAL_MODE_LACKING not in problems:
            return Outcome.ALREADY  # only regions to start
        @self.report.step(f'Registering O2CB cluster "{target.name}"')
        def _() -> None:
            self.add_nodes(target, nodes)
            if set_mode is not None:
                set_mode(target, layout)
        return Outcome.DONE

    def remove_partial(self, target: Cluster, problems: list[str]) -> None:
        @self.report.step(f'Removing incomplete O2CB cluster "{target.name}"')
        def _() -> None:
            if target.heartbeat_regions():
                raise StepError(
                    f"cluster {target.name} lacks {', '.join(problems)}, and a heartbeat"
                    " region is active: it cannot be rebuilt while a volume is mounted"
                )
            self.remove(target, strict=True)

    def register(self, target: Cluster, layout: ClusterConf) -> None:
        if not self.configfs.available():
            raise StepError("configfs has no cluster directory: is the o2cb driver loaded?")
        target.create()
        self.add_nodes(target, layout.nodes)

    def add_nodes(self, target: Cluster, nodes: Iterable[NodeConf]) -> None:
        for node_conf in nodes:
            node = target.node(node_conf.name)
            node.create()
            node.configure(node_conf.number, node_conf.ip_address, node_conf.ip_port)

    def set_timeouts(self, target: Cluster) -> None:
        """Write each timeout this kernel has an attribute for.

        ocfs2 1.2 drivers have heartbeat/ but no dead_threshold in it (the
        threshold is in /proc) and no network timeouts at all.
        """
        settings = self.settings
        if self.offers(target, f"{target.heartbeat.path}/dead_threshold"):
            target.heartbeat.write("dead_threshold", settings.heartbeat_threshold)
        elif self.system.exists(LEGACY_THRESHOLD_FILE):
            self.system.write_attribute(LEGACY_THRESHOLD_FILE, str(settings.heartbeat_threshold))
        if self.offers(target, f"{target.path}/idle_timeout_ms"):
            target.set_network_timeouts(
                settings.idle_timeout_ms, settings.keepalive_delay_ms, settings.reconnect_delay_ms
            )

    def offers(self, target: Cluster, attribute: str) -> bool:
        """Whether the kernel has this attribute: it shows one, or its driver family has it.

        ocfs2 1.2 clusters have no timeouts, the later families have them all;
        the family answers for a cluster that is only planned yet.
        """
        return self.system.exists(attribute) or self.kernel.generation() is not Generation.LEGACY

    # -- offline -------------------------------------------------------------

    def heartbeat_active(self) -> list[str]:
        """Active heartbeat regions of every cluster: nothing may stop while there are any."""
        return [region for target in self.configfs.clusters()
                for region in target.heartbeat_regions()]

    def offline(self, name: str, force: bool = False,
                before_removal: Callable[[], None] | None = None) -> Outcome:
        """Remove the cluster; refused while a heartbeat region is active."""
        target = self.cluster(name)
        if not target.exists():
            return Outcome.ALREADY
        @self.report.step(f"Stopping O2CB cluster {name}")
        def _() -> None:
            if target.heartbeat_regions():
                raise StepError(HEARTBEAT_STILL_ACTIVE)
            if before_removal is not None:
                before_removal()

        @self.report.step(f'Unregistering O2CB cluster "{name}"')
        def _() -> None:
            failures = self.remove(target, strict=not force)
            if failures:
                raise failures[0]
        return Outcome.DONE

    def remove(self, target: Cluster, strict: bool) -> list[StepError]:
        """Remove the nodes, then the cluster.

        Not strict (force-offline): go on past what will not go and return
        the failures instead of raising.
        """
        failures: list[StepError] = []
        for node in [*target.nodes(), target]:
            if not node.exists():
                continue
            try:
                node.remove()
            except StepError as error:
                if strict:
                    raise
                failures.append(error)
        return failures

    # -- status --------------------------------------------------------------

    def status(self, report: StatusReport, name: str) -> None:
        target = self.cluster(name)
        exists = target.exists()
        problems = self.missing(name) if exists else []
        online = exists and not problems
        state = "Online" if online else ("Partial" if exists else "Offline")
        report.facts["cluster"] = name
        report.facts["partial"] = bool(exists and problems)
        report.add("online", online, f'Checking O2CB cluster "{name}": {state}')
        if problems:
            report.add("missing", problems, f"  Missing: {', '.join(problems)}")
        if not exists:
            return
        report.facts["configfs"] = target.dump()
        threshold = target.heartbeat.read_int("dead_threshold")
        if threshold is None:
            legacy = self.system.read_attribute(LEGACY_THRESHOLD_FILE)
            threshold = int(legacy) if legacy and legacy.isdigit() else None
        if threshold is not None:
            report.add(
                "heartbeat_dead_threshold", threshold, f"  Heartbeat dead threshold: {threshold}"
            )
        for key, label in (
            ("idle_timeout_ms", "Network idle timeout"),
            ("keepalive_delay_ms", "Network keepalive delay"),
            ("reconnect_delay_ms", "Network reconnect delay"),
        ):
            value = target.read_int(key)
            if value is not None:
                report.add(key, value, f"  {label}: {value}")
        self.status_pending_timeouts(report, target)
        self.status_nodes(report, target)
        mode = "global" if target.heartbeat.read("mode") == "global" else "local"
        report.add("heartbeat_mode", mode, f"  Heartbeat mode: {mode.capitalize()}")
        regions = [{"uuid": uuid, "device": target.region(uuid).device}
                   for uuid in target.heartbeat_regions()]
        report.facts["heartbeat_regions"] = regions
        report.add(
            "heartbeat_active", bool(regions),
            f"Checking O2CB heartbeat: {'Active' if regions else 'Not active'}",
        )
        if mode == "global" and regions:  # local regions belong to mounted volumes
            report.lines.extend(f"  {region['uuid']} {region['device'] or ''}".rstrip()
                                for region in regions)
            self.status_live_nodes(report)

    def status_nodes(self, report: StatusReport, target: Cluster) -> None:
        """The nodes in configfs, as data; the text keeps the reference's lines."""
        report.facts["nodes"] = [
            {
                "name": node.name,
                "number": node.read_int("num"),
                "address": node.read("ipv4_address"),
                "port": node.read_int("ipv4_port"),
                "local": node.is_local,
            }
            for node in target.nodes()
        ]

    def status_live_nodes(self, report: StatusReport) -> None:
        """The nodes o2hb sees heartbeating, from debugfs, as the reference lists them."""
        text = self.system.read_attribute(LIVE_NODES)
        if text is None:
            return  # debugfs not mounted: the reference says nothing either
        live = [int(word) for word in text.split() if word.isdigit()]
        report.add("live_nodes", live, f"Nodes in O2CB cluster: {text}")

    def status_pending_timeouts(self, report: StatusReport, target: Cluster) -> None:
        """Configured timeouts the running cluster does not have yet: informational."""
        pending = self.pending_timeouts(target)
        report.facts["pending_timeouts"] = pending
        if pending:
            changes = ", ".join(
                f"{name} {values['running']} -> {values['configured']}"
                for name, values in pending.items()
            )
            report.lines.append(f"  Configured timeouts differ (a restart applies them): {changes}")
