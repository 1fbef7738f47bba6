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

from .. import clusterconf
from ..clusterconf import ClusterConf, NodeConf
from ..configfs import Cluster, Configfs
from ..errors import ConfigError, O2cbError, StepError
from ..kernel import LEGACY_THRESHOLD_FILE, Generation
from ..records import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..context import Context

HEARTBEAT_STILL_ACTIVE = "Unable to stop cluster as heartbeat region still active"


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
class Lacks:
    """What the cluster in configfs lacks of its layout; nothing when it is complete."""

    cluster: bool = False  # no cluster at all
    local_node: bool = False  # no node is marked local (without a layout to say which)
    nodes: list[str] = field(default_factory=list)  # nodes of the layout not in configfs
    attributes: list[tuple[str, str, str]] = field(default_factory=list)  # node, name, value
    local: str = ""  # the layout's node for this host, not marked local
    mode: str = ""  # the heartbeat mode the layout asks for and the kernel lacks
    regions: list[str] = field(default_factory=list)  # global regions that do not run

    def __bool__(self) -> bool:
        return bool(self.cluster or self.local_node or self.nodes or self.attributes
                    or self.local or self.mode or self.regions)

    def words(self) -> list[str]:
        """Each lack as status names it."""
        if self.cluster:
            return ["the cluster"]
        words = ["a local node"] if self.local_node else []
        words += [f"node {name}" for name in self.nodes]
        words += [f"{attribute}={value} on node {node}"
                  for node, attribute, value in self.attributes]
        if self.local:
            words.append(f"local=1 on node {self.local}")
        if self.mode:
            words.append(f"heartbeat mode {self.mode}")
        words += [f"heartbeat region {uuid}" for uuid in self.regions]
        return words

    def only_additions(self) -> bool:
        """Whether the cluster can be completed without a rebuild: it lacks only
        nodes, the global mode or running regions."""
        rebuild = self.cluster or self.local_node or self.attributes or self.local
        return not rebuild and self.mode in ("", "global")


class O2nmCluster:
    """The o2nm cluster of one stack; ``from_layout``: built from cluster.conf."""

    def __init__(self, context: Context, from_layout: bool = True,
                 check_timeouts: bool = True) -> None:
        self.system = context.system
        self.kernel = context.kernel
        self.steps = context.steps
        self.settings = context.settings
        self.from_layout = from_layout
        # False when the settings are not from a valid config: no pending timeouts to show.
        self.check_timeouts = check_timeouts

    @property
    def configfs(self) -> Configfs:
        return self.kernel.configfs()

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

    def missing(self, name: str, applied: ClusterConf | None = None) -> Lacks:
        """What the cluster in configfs lacks; nothing when it is complete.

        ``applied``: the layout the last online applied (parts/drift.py), which
        status holds it to instead of cluster.conf, since the file may have
        moved on.
        """
        target = self.cluster(name)
        if not target.exists():
            return Lacks(cluster=True)
        try:
            layout = applied or (self.layout(name) if self.from_layout else None)
        except O2cbError:
            layout = None  # status and stop never depend on the configuration
        if layout is None:
            marked = any(node.is_local for node in target.nodes())
            return Lacks(local_node=self.from_layout and not marked)
        lacks = Lacks()
        for node_conf in layout.nodes:
            node = target.node(node_conf.name)
            if not node.exists():
                lacks.nodes.append(node_conf.name)
                continue
            expected = {
                "num": str(node_conf.number),
                "ipv4_address": node_conf.ip_address,
                "ipv4_port": str(node_conf.ip_port),
            }
            for attribute, value in expected.items():
                if node.read(attribute) != value:
                    lacks.attributes.append((node_conf.name, attribute, value))
        local = target.node(self.local_node_name(layout))
        if local.exists() and not local.is_local:
            lacks.local = local.name
        mode = target.heartbeat.read("mode")
        if layout.heartbeat_mode == "local" and mode not in (None, "local"):
            lacks.mode = "local"
        if layout.heartbeat_mode == "global" and mode != "global":
            lacks.mode = "global"
        lacks.regions = pending_regions(target, layout)
        return lacks

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
               regions_to_stop: bool = False) -> bool:
        """Build the cluster from cluster.conf; finish a partial one by building it anew.

        ``set_mode`` gives the kernel the heartbeat mode once the cluster
        exists and before any global heartbeat region does.  Regions are not
        started here: a cluster that lacks only running regions is left as is.
        ``regions_to_stop``: regions removed from the layout will be stopped
        next, so a complete cluster is not "already online".  True when it
        changes the cluster.
        """
        target = self.cluster(name)
        if target.exists():
            lacks = self.missing(name)
            if not lacks:
                if not regions_to_stop:
                    self.steps.note(f"Cluster {name} already online")
                return False
            layout = self.layout(name)
            if lacks.only_additions() and self.local_node_name(layout) not in lacks.nodes:
                return self.extend(target, layout, lacks, set_mode)
            self.remove_partial(target, lacks)
        layout = self.layout(name)
        local_name = self.local_node_name(layout)

        def register() -> None:
            self.register(target, layout)
            if set_mode is not None:
                set_mode(target, layout)

        def set_timeouts() -> None:
            self.set_timeouts(target)
            # Last: local=1 starts o2net, and a peer that connects first
            # would freeze the idle timeout the kernel will negotiate.
            target.node(local_name).set_local()

        self.steps.add(f'Registering O2CB cluster "{name}"', register)
        self.steps.add("Setting O2CB cluster timeouts ", set_timeouts)
        return True

    def extend(self, target: Cluster, layout: ClusterConf, lacks: Lacks,
               set_mode: Callable[[Cluster, ClusterConf], None] | None) -> bool:
        """Add the nodes (and the mode) a complete cluster lacks, as a re-online does."""
        if not lacks.nodes and not lacks.mode:
            return False  # only regions to start
        by_name = {node.name: node for node in layout.nodes}

        def add() -> None:
            self.add_nodes(target, [by_name[name] for name in lacks.nodes])
            if set_mode is not None:
                set_mode(target, layout)

        self.steps.add(f'Registering O2CB cluster "{target.name}"', add)
        return True

    def remove_partial(self, target: Cluster, lacks: Lacks) -> None:
        def remove() -> None:
            if target.heartbeat_regions():
                raise StepError(
                    f"cluster {target.name} lacks {', '.join(lacks.words())}, and a heartbeat"
                    " region is active: it cannot be rebuilt while a volume is mounted"
                )
            self.remove(target, strict=True)

        self.steps.add(f'Removing incomplete O2CB cluster "{target.name}"', remove)

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

    def offline(self, name: str, force: bool = False,
                before_removal: Callable[[], None] | None = None) -> None:
        """Remove the cluster; refused while a heartbeat region is active."""
        target = self.cluster(name)
        if not target.exists():
            return

        def stop() -> None:
            if target.heartbeat_regions():
                raise StepError(HEARTBEAT_STILL_ACTIVE)
            if before_removal is not None:
                before_removal()

        def unregister() -> None:
            failures = self.remove(target, strict=not force)
            if failures:
                raise failures[0]

        self.steps.add(f"Stopping O2CB cluster {name}", stop)
        self.steps.add(f'Unregistering O2CB cluster "{name}"', unregister)

    def remove(self, target: Cluster, strict: bool) -> list[StepError]:
        """Remove the nodes, then the cluster.

        Not strict (force-offline): go on past what will not go and return
        the failures instead of raising.
        """
        failures: list[StepError] = []
        for item in [*target.nodes(), target]:
            try:
                item.remove()
            except StepError as error:
                if not item.exists():
                    continue  # gone meanwhile: another run removed it
                if strict:
                    raise
                failures.append(error)
        return failures
