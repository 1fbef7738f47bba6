"""The cman stack: cman's membership, run into the kernel by two daemons.

cman keeps the cluster's layout itself, so nothing is read from
cluster.conf.  o2cb_controld joins cman's membership and builds the o2nm
cluster in configfs from it; ocfs2_controld then drives /dev/ocfs2_control
and mounts.  Online starts them in that order, offline stops them in the
reverse order, and only when no volume depends on them.
"""

from __future__ import annotations

from ..configfs import Cluster
from ..context import Context
from ..errors import MissingProgramError, StepError
from ..kernel import Generation
from ..parts.control import ControlDaemons
from ..parts.drivers import Drivers, DriverSet
from ..parts.o2nm import O2nmCluster
from ..parts.o2nm_status import O2nmStatus
from ..status import StatusReport
from ..system import System

O2CB_CONTROLD = "o2cb_controld"
OCFS2_CONTROLD = "ocfs2_controld"


class CmanParts:
    name = "cman"
    drivers = DriverSet(plugin="user", heartbeat_method="user",
                        generations=frozenset({Generation.STACKGLUE, Generation.HEARTBEAT_MODE}),
                        extra_filesystems=("ocfs2",))

    def __init__(self, context: Context) -> None:
        self.system = context.system
        self.steps = context.steps
        # o2cb_controld builds the cluster from cman's membership, not from a file.
        self.o2nm = O2nmCluster(context, from_layout=False, check_timeouts=False)
        self.daemons = ControlDaemons(context, self.name, (O2CB_CONTROLD, OCFS2_CONTROLD))

    def check_online(self, cluster: str) -> None:
        """Nothing to check in a file: cman owns the layout."""

    def is_online(self, cluster: str) -> bool:
        return self.o2nm.cluster(cluster).exists() and self.daemons.all_running()

    # -- online --------------------------------------------------------------

    def online(self, cluster: str, drivers: Drivers) -> None:
        if not self.daemons.begin_online(cluster, drivers, self.is_online(cluster)):
            return
        self.check_membership(cluster)
        target = self.o2nm.cluster(cluster)
        o2cb_controld = self.daemons.daemon(O2CB_CONTROLD)
        if o2cb_controld.is_running() and not target.exists():
            def refuse() -> None:
                raise StepError(
                    f"{o2cb_controld.label} is running, but cluster {cluster} is not in configfs"
                )

            self.steps.add(f"Starting {o2cb_controld.label}", refuse)
        if not target.exists():
            # Undone after o2cb_controld is stopped: a daemon killed cannot clean up.
            self.system.record_undo(
                f"cluster {cluster} of {o2cb_controld.label}",
                lambda: self._remove_leftover(target),
            )
        started = self.daemons.start(
            o2cb_controld, ready=target.exists,
            what=f"cluster {cluster} has not appeared in configfs",
        )
        if started:
            self.steps.add("Setting O2CB cluster timeouts ", lambda: self.o2nm.set_timeouts(target))
        drivers.load_filesystem("ocfs2")
        self.daemons.start(self.daemons.daemon(OCFS2_CONTROLD))

    def _remove_leftover(self, target: Cluster) -> None:
        if target.exists() and not target.heartbeat_regions():
            self.o2nm.remove(target, strict=False)

    def check_membership(self, cluster: str) -> None:
        def check() -> None:
            running = cman_cluster_name(self.system)
            if running != cluster:
                raise StepError(
                    f"cman runs cluster \"{running}\", not \"{cluster}\": set O2CB_BOOTCLUSTER"
                    f" to {running} or give the cluster name on the command line"
                )

        self.steps.add(f'Checking cman cluster "{cluster}"', check)

    # -- offline -------------------------------------------------------------

    def offline(self, cluster: str, force: bool) -> None:
        target = self.o2nm.cluster(cluster)
        leftover = target.exists() and not target.heartbeat_regions()
        self.daemons.stop_all(force)
        # o2cb_controld removes its cluster when it stops; after a SIGKILL it
        # cannot, and only the stop itself tells which.
        if leftover:
            def remove() -> None:
                failures = self.o2nm.remove(target, strict=not force)
                if failures:
                    raise failures[0]

            self.steps.add(f"Removing cluster {cluster} from configfs", remove,
                           needed=target.exists)

    def stopping_title(self, cluster: str) -> str:
        return f"Stopping O2CB cluster {cluster}"

    def check_unload(self) -> None:
        self.daemons.check_none_running()

    # -- status --------------------------------------------------------------

    def status(self, report: StatusReport, cluster: str) -> None:
        self.daemons.status(report)
        # The o2nm cluster o2cb_controld built: registered, timeouts, heartbeat.
        O2nmStatus(self.o2nm).status(report, cluster)
        report.facts["online"] = self.is_online(cluster)


def cman_cluster_name(system: System) -> str:
    """The cluster cman runs, from `cman_tool status`."""
    try:
        result = system.run(["cman_tool", "status"], changes=False)
    except MissingProgramError:
        raise MissingProgramError(
            "cluster stack cman is not supported here: cman_tool not found (is cman installed?)"
        ) from None
    if not result.ok:
        raise StepError(f"cman is not running: {result.reason}")
    for line in result.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Cluster Name" and value.strip():
            return value.strip()
    raise StepError("cman_tool status names no cluster: is cman running?")
