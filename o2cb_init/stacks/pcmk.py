"""The pcmk stack: corosync's membership, with the kernel DLM run by dlm_controld.

Pacemaker (or corosync alone) owns the cluster's layout and name, so there
is no o2nm cluster in configfs and no cluster.conf.  Two ways, chosen by
the kernel's stack glue:

- with /sys/fs/ocfs2/dlm_recover_callback_support (every kernel a current
  distribution ships), ocfs2 joins each volume's lockspace through
  dlm_controld itself.  Before anything loads, corosync must run the boot
  cluster and be quorate (waited for, O2CB_QUORUM_TIMEOUT seconds); online
  then names pcmk in cluster_stack, loads ocfs2 and starts dlm_controld
  when nothing runs it (parts/dlm_controld.py).  Offline stops dlm_controld
  only if this tool started it; corosync is never stopped.
- without it, ocfs2_controld.pcmk drives /dev/ocfs2_control, as in 2008:
  online starts it, offline stops it once no volume depends on it.

The stack glue shows the callbacks only once loaded: before, the plan
counts on them (model.py) unless only ocfs2_controld is installed, and
online checks, once the stack glue is there, that the kernel has them.
"""

from __future__ import annotations

from functools import cached_property

from .. import corosync
from ..context import Context
from ..corosync import Quorum
from ..errors import ConfigError, MissingProgramError, O2cbError, StepError, shown
from ..kernel import RECOVER_CALLBACK_FILE, Generation
from ..parts import pcmk_status
from ..parts.control import ControlDaemons
from ..parts.dlm_controld import DlmControld
from ..parts.drivers import STACKGLUE_MODULE, Drivers, DriverSet, default_refusal
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
        self.system = context.system
        self.kernel = context.kernel
        self.steps = context.steps
        self.quorum_timeout = context.settings.quorum_timeout
        self.daemons = ControlDaemons(context, self.name, ("ocfs2_controld",))
        self.dlm = DlmControld(context)

    @cached_property
    def uses_dlm_controld(self) -> bool:
        """The kernel joins lockspaces through dlm_controld, with no ocfs2_controld.

        Decided once a run, before its first change.  A stack glue not loaded
        yet cannot say: then only a machine with ocfs2_controld and no
        dlm_controld installed takes the 2008 way.
        """
        if self.kernel.has_stackglue():
            return self.system.exists(RECOVER_CALLBACK_FILE)
        ocfs2_controld = self.daemons.daemon("ocfs2_controld").locate()
        return not (ocfs2_controld and self.dlm.daemon.locate() is None)

    # -- online --------------------------------------------------------------

    def check_online(self, cluster: str) -> None:
        """corosync must run ``cluster`` with quorum, before anything is loaded.

        The refusals in order: corosync not installed (5), not running (1),
        another cluster (6), no quorum once O2CB_QUORUM_TIMEOUT is over (1).
        """
        if not self.uses_dlm_controld or not self._stackglue_kernel():
            return  # ocfs2_controld's way, or a kernel load() refuses
        if not corosync.installed(self.system):
            raise MissingProgramError(
                f"cluster stack pcmk needs corosync: {corosync.QUORUMTOOL} and"
                f" {corosync.CMAPCTL} are not installed"
            )
        if corosync.quorum(self.system) is Quorum.DOWN:
            raise O2cbError(f"cluster stack pcmk needs corosync, which is not running"
                            f" (cluster {cluster})")
        running = corosync.cluster_name(self.system)
        if running is None:
            raise O2cbError("corosync does not say which cluster it runs"
                            f" ({corosync.CMAPCTL} -g {corosync.NAME_KEY} failed)")
        if running != cluster:
            raise ConfigError(
                f'corosync runs cluster "{shown(running)}", not "{cluster}"'
                " (O2CB_BOOTCLUSTER, or corosync.conf's totem.cluster_name)"
            )
        self.dlm.require()
        state = corosync.wait_for_quorum(self.system, self.quorum_timeout)
        if state is Quorum.DOWN:
            raise O2cbError(f"corosync stopped while waiting for quorum (cluster {cluster})")
        if state is Quorum.NOT_QUORATE:
            raise O2cbError(f"corosync's cluster {cluster} is not quorate after"
                            f" {self.quorum_timeout} s (O2CB_QUORUM_TIMEOUT)")

    def _stackglue_kernel(self) -> bool:
        """This kernel has the stack glue, loaded or as a module modprobe knows."""
        if self.kernel.has_stackglue():
            return True
        found = self.system.run(["modprobe", "--show-depends", STACKGLUE_MODULE], changes=False)
        return found.ok

    def online(self, cluster: str, drivers: Drivers) -> None:
        if not self.uses_dlm_controld:
            if not self.daemons.begin_online(cluster, drivers, self.is_online(cluster)):
                return
            drivers.load_filesystem("ocfs2")
            for daemon in self.daemons.daemons:
                self.daemons.start(daemon)
            return
        self.steps.add(None, self._check_callbacks)
        online = self.is_online(cluster)
        drivers.set_cluster_stack()
        if online:
            self.steps.note(f"Cluster {cluster} already online")
            return
        drivers.load_filesystem("ocfs2")
        self.dlm.start()

    def _check_callbacks(self) -> None:
        if not self.system.exists(RECOVER_CALLBACK_FILE):
            raise StepError(
                f"this kernel's stack glue has no {RECOVER_CALLBACK_FILE}: cluster stack pcmk"
                " then needs ocfs2_controld.pcmk (load ocfs2_stackglue before start to use it)"
            )

    def _conditions(self) -> dict[str, bool]:
        """What online means with dlm_controld: each condition and whether it holds."""
        return {
            "quorate": corosync.quorum(self.system) is Quorum.QUORATE,
            "dlm_controld": self.dlm.is_running(),
            "plugin": "user" in self.kernel.loaded_plugins(),
            "cluster_stack": self.kernel.cluster_stack() == self.name,
        }

    def is_online(self, cluster: str) -> bool:
        if not self.uses_dlm_controld:
            return self.daemons.all_running()
        return all(self._conditions().values())

    # -- offline -------------------------------------------------------------

    def offline(self, cluster: str, force: bool) -> None:
        if self.uses_dlm_controld:
            self.dlm.stop()  # after the refusal for a volume (stacks/base.py)
        else:
            self.daemons.stop_all(force)

    def stopping_title(self, cluster: str) -> str:
        return f"Stopping O2CB cluster {cluster}"

    def check_unload(self) -> None:
        self.daemons.check_none_running()

    # -- status --------------------------------------------------------------

    def status(self, report: StatusReport, cluster: str) -> None:
        report.facts["cluster"] = cluster
        if not self.uses_dlm_controld:
            self.daemons.status(report)
            online = self.is_online(cluster)
            report.add(
                "online", online,
                f'Checking cluster "{cluster}" ({self.name}): {"Online" if online else "Offline"}',
            )
            return
        pcmk_status.corosync_status(self.system, report)
        self.dlm.status(report)
        pcmk_status.lockspace_status(self.system, self.kernel, report)
        conditions = self._conditions()
        online = all(conditions.values())
        report.facts["conditions"] = conditions
        report.add(
            "online", online,
            f'Checking cluster "{cluster}" ({self.name}): {"Online" if online else "Offline"}',
        )
        # corosync and dlm_controld belong to the cluster manager and may run
        # on with this stack stopped: stopped is 3 when none of ours is there.
        if not online and (conditions["plugin"] or conditions["cluster_stack"]):
            missing = ", ".join(name for name, held in conditions.items() if not held)
            report.lines.append(f"Not online: {missing} missing")
            report.facts["partial"] = True
