"""The classic o2cb stack: disk heartbeat, cluster layout from cluster.conf.

Online builds the cluster in configfs from /etc/ocfs2/cluster.conf, as
o2cb_ctl would, starts its global heartbeat regions in global mode, and
starts o2hbmonitor; offline takes it down again, but never while a
heartbeat region is in use, because a mounted volume depends on it.  Runs
on every kernel generation.
"""

from __future__ import annotations

from ..kernel import Generation
from ..parts.drivers import Drivers
from ..parts.monitor import HeartbeatMonitor
from ..parts.o2nm import O2nmCluster, removed_regions
from ..parts.regions import HeartbeatRegions
from ..parts.userdlm import UserdlmDomains
from ..report import Outcome
from ..status import StatusReport
from .base import Context


class O2cbStack:
    name = "o2cb"

    def __init__(self, context: Context) -> None:
        system, kernel, report = context.system, context.kernel, context.report
        self.report = report
        self.drivers = Drivers(system, kernel, report, self.name, plugin="o2cb",
                               heartbeat_method="disk", generations=frozenset(Generation))
        self.o2nm = O2nmCluster(system, kernel, report, context.settings,
                                check_timeouts=not context.observed)
        self.regions = HeartbeatRegions(system, kernel, report)
        self.monitor = HeartbeatMonitor(system, report, self.name)
        self.userdlm = UserdlmDomains(system, kernel, report)

    def check_online(self, cluster: str) -> None:
        if not self.o2nm.is_online(cluster):
            self.o2nm.check(cluster)

    def load(self) -> Outcome:
        return self.drivers.load()

    def online(self, cluster: str) -> Outcome:
        self.drivers.set_cluster_stack()
        target, layout = self.o2nm.cluster(cluster), self.o2nm.layout(cluster)
        outcome = self.o2nm.online(cluster, set_mode=self.regions.set_mode,
                                   regions_to_stop=bool(removed_regions(target, layout)))
        started = self.regions.online(target, layout)
        if Outcome.DONE in (outcome, started):
            self.monitor.start()
            return Outcome.DONE
        return outcome

    def is_online(self, cluster: str) -> bool:
        return self.o2nm.is_online(cluster)

    def offline(self, cluster: str, force: bool = False) -> Outcome:
        self.drivers.refuse_in_use(f"Stopping O2CB cluster {cluster}")
        self.userdlm.clean(force)
        self.regions.offline(self.o2nm.cluster(cluster))
        outcome = self.o2nm.offline(cluster, force, before_removal=self.monitor.stop)
        self.drivers.unload_ocfs2()
        return outcome

    def unload(self) -> Outcome:
        self.drivers.refuse_in_use(None)
        self.drivers.check_no_cluster()
        self.userdlm.clean()
        return self.drivers.unload()

    def status(self, cluster: str) -> StatusReport:
        report = StatusReport()
        self.drivers.status(report)
        if cluster:
            self.o2nm.status(report, cluster)
            self.userdlm.status(report)
        self.drivers.status_debugfs(report)
        return report
