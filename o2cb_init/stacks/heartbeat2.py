"""The heartbeat2 stack: userspace heartbeat, cluster layout from cluster.conf.

heartbeat2 mirrors the cluster's layout in /etc/ocfs2/cluster.conf, so the
cluster goes online and offline in configfs exactly as for o2cb; only the
heartbeat method differs (`user` instead of `disk`).  It runs on 2007-era
kernels (configfs cluster/heartbeat_mode).  Stack-glue kernels cannot run
it: /sys/fs/ocfs2/cluster_stack takes a four-character name, and their
userspace stack is pcmk.
"""

from __future__ import annotations

from ..context import Context
from ..kernel import Generation
from ..parts.drivers import Drivers, DriverSet, default_refusal
from ..parts.o2nm import O2nmCluster
from ..parts.o2nm_status import O2nmStatus
from ..status import StatusReport


def refusal(generation: Generation) -> str:
    if generation is Generation.STACKGLUE:
        return (
            "cluster stack heartbeat2 cannot run on this kernel: its stack glue takes a"
            " four-character stack name in /sys/fs/ocfs2/cluster_stack, and \"heartbeat2\""
            " is not one; the userspace stack such kernels run is pcmk (O2CB_STACK=pcmk)"
        )
    return default_refusal("heartbeat2", generation)


class Heartbeat2Parts:
    name = "heartbeat2"
    drivers = DriverSet(plugin="user", heartbeat_method="user",
                        generations=frozenset({Generation.HEARTBEAT_MODE}), refusal=refusal,
                        extra_filesystems=("ocfs2",))

    def __init__(self, context: Context) -> None:
        self.o2nm = O2nmCluster(context, check_timeouts=not context.observed)

    def check_online(self, cluster: str) -> None:
        if not self.o2nm.is_online(cluster):
            self.o2nm.check(cluster)

    def online(self, cluster: str, drivers: Drivers) -> None:
        self.o2nm.online(cluster)

    def is_online(self, cluster: str) -> bool:
        return self.o2nm.is_online(cluster)

    def offline(self, cluster: str, force: bool) -> None:
        self.o2nm.offline(cluster, force)

    def stopping_title(self, cluster: str) -> str:
        return f"Stopping O2CB cluster {cluster}"

    def check_unload(self) -> None:
        """Nothing of this stack runs outside the kernel that this tool started."""

    def status(self, report: StatusReport, cluster: str) -> None:
        O2nmStatus(self.o2nm).status(report, cluster)
