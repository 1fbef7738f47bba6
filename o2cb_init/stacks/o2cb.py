"""The classic o2cb stack: disk heartbeat, cluster layout from cluster.conf.

Online builds the cluster in configfs from /etc/ocfs2/cluster.conf, as
o2cb_ctl would, starts its global heartbeat regions in global mode, and
starts o2hbmonitor; offline takes it down again, but never while a
heartbeat region is in use, because a mounted volume depends on it.  Runs
on every kernel generation.
"""

from __future__ import annotations

import functools

from ..clusterconf import ClusterConf
from ..configfs import Cluster
from ..context import Context
from ..errors import NotRunningError, O2cbError, StepError
from ..kernel import Generation
from ..parts import drift
from ..parts.drivers import Drivers, DriverSet
from ..parts.monitor import HeartbeatMonitor
from ..parts.o2nm import O2nmCluster, removed_regions
from ..parts.o2nm_status import O2nmStatus
from ..parts.regions import HeartbeatRegions
from ..status import StatusReport


class O2cbParts:
    name = "o2cb"
    drivers = DriverSet(plugin="o2cb", heartbeat_method="disk", generations=frozenset(Generation))

    def __init__(self, context: Context) -> None:
        self.system = context.system
        self.kernel = context.kernel
        self.steps = context.steps
        self.o2nm = O2nmCluster(context, check_timeouts=not context.observed)
        self.regions = HeartbeatRegions(context)
        self.monitor = HeartbeatMonitor(context, self.name)

    def check_online(self, cluster: str) -> None:
        if not self.o2nm.is_online(cluster):
            self.o2nm.check(cluster)

    def online(self, cluster: str, drivers: Drivers) -> None:
        drivers.set_cluster_stack()
        target, layout = self.o2nm.cluster(cluster), self.o2nm.layout(cluster)
        changed = self.o2nm.online(cluster, set_mode=self.regions.set_mode,
                                   regions_to_stop=bool(removed_regions(target, layout)))
        started = self.regions.online(target, layout)
        if changed or started:
            self.monitor.start()
        self.record_applied(layout)

    def reload(self, cluster: str) -> None:
        """Bring the running cluster to the files, as far as the kernel allows online.

        Any difference that needs a restart refuses the whole reload before
        anything changes (drift.py says which do).
        """
        target = self.o2nm.cluster(cluster)
        if not target.exists():
            raise NotRunningError(f"reload: cluster {cluster} is not running")
        layout = self.o2nm.layout(cluster)
        mounted = bool(self.kernel.mounts_of_type("ocfs2"))
        found = drift.drift(self.o2nm, target, layout, mounted)
        if found.refusals:
            raise O2cbError(f"reload: cluster {cluster}: "
                            + "; ".join(difference.text() for difference in found.refusals))
        if not found:
            self.steps.note(f"Cluster {cluster} already as configured")
        if found.add_nodes:
            self.steps.add(f'Adding nodes to O2CB cluster "{cluster}"',
                           lambda: self.o2nm.add_nodes(target, found.add_nodes))
        for name in found.remove_nodes:
            self.steps.add(f'Removing node "{name}" from O2CB cluster "{cluster}"',
                           functools.partial(self.remove_idle_node, target, name))
        if self.regions.online(target, layout) and found.start_regions:
            self.monitor.start()
        self.record_applied(layout)

    def remove_idle_node(self, target: Cluster, name: str) -> None:
        """Remove a node that neither heartbeats nor is connected; the undo puts it back."""
        node = target.node(name)
        number = node.read_int("num")
        address, port = node.read("ipv4_address"), node.read_int("ipv4_port")
        busy = (drift.node_numbers(self.system, drift.LIVE_NODES) or set()) | (
            drift.node_numbers(self.system, drift.CONNECTED_NODES) or set())
        if number in busy:
            raise StepError(f"node {name} heartbeats or is connected: it cannot be removed"
                            " online")
        node.remove()
        if number is not None and address and port:
            def put_back() -> None:
                node.create()
                node.configure(number, address, port)

            self.system.record_undo(f"removing node {name}", put_back)

    def record_applied(self, layout: ClusterConf) -> None:
        """Remember what this online applied, so that status tells partial from pending."""
        text = drift.applied_text(layout)
        before = self.system.read_optional(drift.APPLIED_FILE)
        if before == text:
            return

        def write() -> None:
            self.system.replace_file(drift.APPLIED_FILE, text)
            if before is None:
                self.system.record_undo("recording the applied layout",
                                        lambda: self.system.remove_file(drift.APPLIED_FILE))
            else:
                self.system.record_undo("recording the applied layout",
                                        lambda: self.system.replace_file(drift.APPLIED_FILE,
                                                                         before))

        self.steps.add(None, write)

    def is_online(self, cluster: str) -> bool:
        return self.o2nm.is_online(cluster)

    def offline(self, cluster: str, force: bool) -> None:
        self.regions.offline(self.o2nm.cluster(cluster))
        self.o2nm.offline(cluster, force, before_removal=self.monitor.stop)
        if self.system.exists(drift.APPLIED_FILE):
            self.steps.add(None, lambda: self.system.remove_file(drift.APPLIED_FILE))

    def stopping_title(self, cluster: str) -> str:
        if self.regions.running_global(self.o2nm.cluster(cluster)):
            return f'Stopping global heartbeat on cluster "{cluster}"'
        return f"Stopping O2CB cluster {cluster}"

    def check_unload(self) -> None:
        """Nothing of this stack runs outside the kernel."""

    def status(self, report: StatusReport, cluster: str) -> None:
        O2nmStatus(self.o2nm).status(report, cluster)
