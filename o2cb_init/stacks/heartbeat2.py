"""The heartbeat2 stack: userspace heartbeat, cluster layout from cluster.conf.

heartbeat2 mirrors the cluster's layout in /etc/ocfs2/cluster.conf, so the
cluster goes online and offline in configfs exactly as for o2cb; only the
heartbeat method differs (`user` instead of `disk`).  It runs on 2007-era
kernels (configfs cluster/heartbeat_mode).  Stack-glue kernels cannot run
it: /sys/fs/ocfs2/cluster_stack takes a four-character name, and their
userspace stack is pcmk.
"""

from __future__ import annotations

from ..kernel import Generation
from ..parts.drivers import Drivers, default_refusal
from ..parts.o2nm import O2nmCluster
from ..parts.userdlm import UserdlmDomains
from ..report import Outcome
from ..status import StatusReport
from .base import Context


def refusal(generation: Generation) -> str:
    if generation is Generation.STACKGLUE:
        return (
            "cluster stack heartbeat2 cannot run on this kernel: its stack glue takes a"
            " four-character stack name in /sys/fs/ocfs2/cluster_stack, and \"heartbeat2\""
            " is not one; the userspace stack such kernels run is pcmk (O2CB_STACK=pcmk)"
        )
    return default_refusal("heartbeat2", generation)


class Heartbeat2Stack:
    name = "heartbeat2"

    def __init__(self, context: Context) -> None:
        system, kernel, report = context.system, context.kernel, context.report
        self.drivers = Drivers(
            system, kernel, report, self.name, plugin="user", heartbeat_method="user",
            generations=frozenset({Generation.HEARTBEAT_MODE}), refusal=refusal,
            extra_filesystems=("ocfs2",),
        )
        self.o2nm = O2nmCluster(system, kernel, report, context.settings,
                                check_timeouts=not context.observed)
        self.userdlm = UserdlmDomains(system, kernel, report)

    def check_online(self, cluster: str) -> None:
        if not self.o2nm.is_online(cluster):
            self.o2nm.check(cluster)

    def load(self) -> Outcome:
        return self.drivers.load()

    def online(self, cluster: str) -> Outcome:
        return self.o2nm.online(cluster)

    def is_online(self, cluster: str) -> bool:
        return self.o2nm.is_online(cluster)

    def offline(self, cluster: str, force: bool = False) -> Outcome:
        self.drivers.refuse_in_use(f"Stopping O2CB cluster {cluster}")
        self.userdlm.clean(force)
        outcome = self.o2nm.offline(cluster, force)
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
