"""The pcmk stack: Pacemaker's membership, run into the kernel by ocfs2_controld.

The userspace stack that stack-glue kernels run.  Pacemaker owns the
cluster's layout and name (O2CB_BOOTCLUSTER is taken as it is), so there is
no o2nm cluster in configfs and no cluster.conf: online loads ocfs2 and
starts ocfs2_controld.pcmk, offline stops it once no volume depends on it.
"""

from __future__ import annotations

from ..kernel import Generation
from ..parts.control import ControlDaemons
from ..parts.drivers import Drivers, default_refusal
from ..parts.userdlm import UserdlmDomains
from ..report import Outcome
from ..status import StatusReport
from .base import Context


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
    return default_refusal(PcmkStack.name, generation)


class PcmkStack:
    name = "pcmk"

    def __init__(self, context: Context) -> None:
        system, kernel, report = context.system, context.kernel, context.report
        self.report = report
        self.configfs = context.configfs
        self.drivers = Drivers(
            system, kernel, report, self.name, plugin="user", heartbeat_method="user",
            generations=frozenset({Generation.STACKGLUE}), refusal=refusal,
            extra_filesystems=("ocfs2",),
        )
        self.daemons = ControlDaemons(system, kernel, report, self.name, ("ocfs2_controld",))
        self.userdlm = UserdlmDomains(system, kernel, report)

    def check_online(self, cluster: str) -> None:
        """Nothing to check in a file: Pacemaker owns the layout."""

    def load(self) -> Outcome:
        return self.drivers.load()

    def online(self, cluster: str) -> Outcome:
        self.daemons.require()
        self.drivers.set_cluster_stack()
        if self.is_online(cluster):
            self.report.line(f"Cluster {cluster} already online")
            return Outcome.ALREADY
        self.drivers.load_filesystem("ocfs2")
        for daemon in self.daemons.daemons:
            self.daemons.start(daemon)
        return Outcome.DONE

    def is_online(self, cluster: str) -> bool:
        return self.daemons.all_running()

    def offline(self, cluster: str, force: bool = False) -> Outcome:
        self.drivers.refuse_in_use(f"Stopping O2CB cluster {cluster}")
        self.userdlm.clean(force)
        outcome = self.daemons.stop_all(self.configfs, force)
        self.drivers.unload_ocfs2()
        return outcome

    def unload(self) -> Outcome:
        self.drivers.refuse_in_use(None)
        self.daemons.check_none_running()
        self.drivers.check_no_cluster()
        self.userdlm.clean()
        return self.drivers.unload()

    def status(self, cluster: str) -> StatusReport:
        report = StatusReport()
        self.drivers.status(report)
        if cluster:
            report.facts["cluster"] = cluster
            self.daemons.status(report)
            online = self.is_online(cluster)
            report.add(
                "online", online,
                f'Checking cluster "{cluster}" ({self.name}): {"Online" if online else "Offline"}',
            )
            self.userdlm.status(report)
        self.drivers.status_debugfs(report)
        return report
