"""The pcmk stack: Pacemaker's membership, run into the kernel by ocfs2_controld.

The userspace stack that stack-glue kernels run.  Pacemaker owns the
cluster's layout and name (O2CB_BOOTCLUSTER is taken as it is), so there is
no o2nm cluster in configfs and no cluster.conf: online loads ocfs2 and
starts ocfs2_controld.pcmk, offline stops it once no volume depends on it.
"""

from __future__ import annotations

from ..context import Context
from ..kernel import Generation
from ..parts.control import ControlDaemons
from ..parts.drivers import Drivers, DriverSet, default_refusal
from ..status import StatusReport


def refusal(generation: Generation) -> str:
    """Why this kernel cannot run pcmk, in the words of its driver family.

    Before its drivers are loaded a 2007-era kernel looks like an ocfs2 1.2
    one (its heartbeat_mode appears with the node manager): the legacy
    wording names the stack glue too, which neither family has.
    """
    needs = (
        "cluster stack pcmk needs the ocfs2 stack glue (/sys/fs/ocfs2/cluster_stack),"
        " which this kernel's"
    )
    if generation is Generation.LEGACY:
        return f"{needs} ocfs2 drivers do not have (ocfs2 1.2 runs only the o2cb stack)"
    if generation is Generation.HEARTBEAT_MODE:
        return f"{needs} 2007-era ocfs2 drivers do not have (they run o2cb, cman and heartbeat2)"
    return default_refusal(PcmkParts.name, generation)


class PcmkParts:
    name = "pcmk"
    drivers = DriverSet(plugin="user", heartbeat_method="user",
                        generations=frozenset({Generation.STACKGLUE}), refusal=refusal,
                        extra_filesystems=("ocfs2",))

    def __init__(self, context: Context) -> None:
        self.daemons = ControlDaemons(context, self.name, ("ocfs2_controld",))

    def check_online(self, cluster: str) -> None:
        """Nothing to check in a file: Pacemaker owns the layout."""

    def online(self, cluster: str, drivers: Drivers) -> None:
        if not self.daemons.begin_online(cluster, drivers, self.is_online(cluster)):
            return
        drivers.load_filesystem("ocfs2")
        for daemon in self.daemons.daemons:
            self.daemons.start(daemon)

    def is_online(self, cluster: str) -> bool:
        return self.daemons.all_running()

    def offline(self, cluster: str, force: bool) -> None:
        self.daemons.stop_all(force)

    def stopping_title(self, cluster: str) -> str:
        return f"Stopping O2CB cluster {cluster}"

    def check_unload(self) -> None:
        self.daemons.check_none_running()

    def status(self, report: StatusReport, cluster: str) -> None:
        report.facts["cluster"] = cluster
        self.daemons.status(report)
        online = self.is_online(cluster)
        report.add(
            "online", online,
            f'Checking cluster "{cluster}" ({self.name}): {"Online" if online else "Offline"}',
        )
