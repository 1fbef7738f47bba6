"""The classic o2cb stack: disk heartbeat, cluster layout from cluster.conf.

Online builds the cluster in configfs from /etc/ocfs2/cluster.conf, as
o2cb_ctl would; offline takes it down again, but never while a heartbeat
region is active, because a mounted volume depends on it.
"""

from __future__ import annotations

from typing import ClassVar

from .. import clusterconf
from ..clusterconf import ClusterConf
from ..configfs import Cluster
from ..daemons import Daemon, DaemonError
from ..errors import ConfigError, StepError, StepFailed
from ..kernel import LEGACY_THRESHOLD_FILE, Generation
from ..report import Outcome
from .base import Stack, StatusReport

HEARTBEAT_MONITOR = "o2hbmonitor"
HEARTBEAT_STILL_ACTIVE = "Unable to stop cluster as heartbeat region still active"


class O2cbStack(Stack):
    name = "o2cb"
    plugin = "o2cb"
    heartbeat_method = "disk"
    uses_heartbeat_monitor: ClassVar[bool] = True
    generations: ClassVar[frozenset[Generation]] = frozenset(Generation)

    # -- online --------------------------------------------------------------

    def is_online(self, cluster: str) -> bool:
        return self.cluster_object(cluster).exists()

    def online(self, cluster: str) -> Outcome:
        self.set_cluster_stack()
        if self.is_online(cluster):
            self.report.line(f"Cluster {cluster} already online")
            return Outcome.ALREADY
        layout = self.cluster_layout(cluster)
        local_name = self.local_node_name(layout)
        target = self.cluster_object(cluster)
        try:
            with self.report.step(f'Registering O2CB cluster "{cluster}"'):
                self.register(target, layout)
            with self.report.step("Setting O2CB cluster timeouts "):
                self.set_timeouts(target)
                # Last: local=1 starts o2net, and a peer that connects first
                # would freeze the idle timeout the kernel will negotiate.
                target.node(local_name).set_local()
        except StepFailed:
            self.remove_cluster(target, strict=False)
            raise
        self.start_heartbeat_monitor()
        return Outcome.DONE

    def cluster_layout(self, cluster: str) -> ClusterConf:
        clusters = clusterconf.load(self.system)
        if cluster not in clusters:
            raise ConfigError(f"Cluster {cluster} is not defined in {clusterconf.CLUSTER_CONF}")
        return clusters[cluster]

    def register(self, target: Cluster, layout: ClusterConf) -> None:
        if not self.context.configfs.available() and not self.system.dry_run:
            raise StepError("configfs has no cluster directory: is the o2cb driver loaded?")
        target.create()
        for node_conf in layout.nodes:
            node = target.node(node_conf.name)
            node.create()
            node.configure(node_conf.number, node_conf.ip_address, node_conf.ip_port)

    def local_node_name(self, layout: ClusterConf) -> str:
        hostname = self.system.hostname()
        node = layout.local_node(hostname)
        if node is None:
            raise ConfigError(
                f"This node ({hostname}) is not a node of cluster {layout.name} "
                f"in {clusterconf.CLUSTER_CONF}"
            )
        return node.name

    def check_online(self, cluster: str) -> None:
        if not self.is_online(cluster):
            self.local_node_name(self.cluster_layout(cluster))

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
        """Whether the kernel has this attribute; a dry run that only planned the cluster
        assumes a current kernel."""
        if self.system.dry_run and not target.exists():
            return True
        return self.system.exists(attribute)

    # -- offline -------------------------------------------------------------

    def offline(self, cluster: str, force: bool = False) -> Outcome:
        target = self.cluster_object(cluster)
        if not target.exists():
            return self.unload_ocfs2()
        with self.report.step(f"Stopping O2CB cluster {cluster}"):
            if target.heartbeat_regions():
                raise StepError(HEARTBEAT_STILL_ACTIVE)
            self.stop_heartbeat_monitor()
            failures = self.remove_cluster(target, strict=not force)
            if failures:
                raise failures[0]
        self.taken_offline.add(cluster)
        self.unload_ocfs2()
        return Outcome.DONE

    # -- o2hbmonitor ----------------------------------------------------------

    def heartbeat_monitor(self) -> Daemon | None:
        """ocfs2-tools' o2hbmonitor, which logs a slow disk heartbeat; None if absent."""
        if not self.uses_heartbeat_monitor:
            return None
        monitor = Daemon(self.system, HEARTBEAT_MONITOR, self.name, search_path=False)
        return monitor if monitor.locate() else None

    def start_heartbeat_monitor(self) -> None:
        """Best effort, as in the reference: the cluster works without it."""
        monitor = self.heartbeat_monitor()
        if monitor is None or monitor.is_running():
            return
        try:
            monitor.start()
        except DaemonError as error:
            self.system.probe(f"{HEARTBEAT_MONITOR} did not start: {error}")

    def stop_heartbeat_monitor(self) -> None:
        monitor = self.heartbeat_monitor()
        if monitor is None:
            return
        try:
            monitor.stop(force=True)
        except DaemonError as error:
            self.system.probe(f"{HEARTBEAT_MONITOR} did not stop: {error}")

    def remove_cluster(self, target: Cluster, strict: bool) -> list[StepError]:
        """Remove the nodes, then the cluster.

        Not strict (force-offline, cleaning up after a failed online): go on
        past what will not go and return the failures instead of raising.
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

    def unload_ocfs2(self) -> Outcome:
        """The filesystem driver goes with the cluster, unless a volume uses it."""
        module = self.kernel.module("ocfs2")
        if module is None or module.in_use:
            return Outcome.ALREADY
        with self.report.step('Unloading module "ocfs2"'):
            self.kernel.remove_module("ocfs2")
        return Outcome.DONE

    # -- status --------------------------------------------------------------

    def status_drivers(self, report: StatusReport) -> None:
        super().status_drivers(report)
        self.status_filesystem(report, "ocfs2_dlmfs", "/dlm")

    def status_cluster(self, report: StatusReport, cluster: str) -> None:
        target = self.cluster_object(cluster)
        online = target.exists()
        report.facts["cluster"] = cluster
        report.add(
            "online", online,
            f'Checking O2CB cluster "{cluster}": {"Online" if online else "Offline"}',
        )
        if not online:
            return
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
        mode = "Global" if target.heartbeat.read("mode") == "global" else "Local"
        report.add("heartbeat_mode", mode, f"  Heartbeat mode: {mode}")
        regions = target.heartbeat_regions()
        report.facts["heartbeat_regions"] = regions
        report.add(
            "heartbeat_active", bool(regions),
            f"Checking O2CB heartbeat: {'Active' if regions else 'Not active'}",
        )
