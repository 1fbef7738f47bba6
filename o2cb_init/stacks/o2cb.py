"""The classic o2cb stack: disk heartbeat, cluster layout from cluster.conf.

Online builds the cluster in configfs from /etc/ocfs2/cluster.conf, as
o2cb_ctl would, starts its global heartbeat regions in global mode, and
starts o2hbmonitor; offline takes it down again, but never while a
heartbeat region is in use, because a mounted volume depends on it.  Runs
on every kernel generation.
"""

from __future__ import annotations

from ..context import Context
from ..kernel import Generation
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

    def is_online(self, cluster: str) -> bool:
        return self.o2nm.is_online(cluster)

    def offline(self, cluster: str, force: bool) -> None:
        self.regions.offline(self.o2nm.cluster(cluster))
        self.o2nm.offline(cluster, force, before_removal=self.monitor.stop)

    def stopping_title(self, cluster: str) -> str:
        if self.regions.running_global(self.o2nm.cluster(cluster)):
            return f'Stopping global heartbeat on cluster "{cluster}"'
        return f"Stopping O2CB cluster {cluster}"

    def check_unload(self) -> None:
        """Nothing of this stack runs outside the kernel."""

    def status(self, report: StatusReport, cluster: str) -> None:
        O2nmStatus(self.o2nm).status(report, cluster)
