"""The cman stack: cman's membership, run into the kernel by two daemons.

cman keeps the cluster's layout itself, so nothing is read from
cluster.conf.  o2cb_controld joins cman's membership and builds the o2nm
cluster in configfs from it; ocfs2_controld then drives /dev/ocfs2_control
and mounts.  Online starts them in that order, offline stops them in the
reverse order, and only when no volume depends on them.
"""

from __future__ import annotations

from typing import ClassVar

from ..daemons import Daemon
from ..errors import MissingProgramError, StepError
from ..kernel import Generation
from ..report import Outcome
from .base import StatusReport
from .o2cb import O2cbStack
from .user import ControlDaemonStack

O2CB_CONTROLD = "o2cb_controld"
OCFS2_CONTROLD = "ocfs2_controld"


class CmanStack(ControlDaemonStack):
    name = "cman"
    generations: ClassVar[frozenset[Generation]] = frozenset(
        {Generation.STACKGLUE, Generation.HEARTBEAT_MODE}
    )
    daemon_names = (O2CB_CONTROLD, OCFS2_CONTROLD)

    def is_online(self, cluster: str) -> bool:
        return self.cluster_object(cluster).exists() and super().is_online(cluster)

    # -- online --------------------------------------------------------------

    def check_membership(self, cluster: str) -> None:
        with self.report.step(f'Checking cman cluster "{cluster}"'):
            running = self.cman_cluster_name()
            if running != cluster:
                raise StepError(
                    f"cman runs cluster \"{running}\", not \"{cluster}\": set O2CB_BOOTCLUSTER"
                    f" to {running} or give the cluster name on the command line"
                )

    def cman_cluster_name(self) -> str:
        """The cluster cman runs, from `cman_tool status`."""
        try:
            result = self.system.run(["cman_tool", "status"], changes=False)
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

    def bring_up(self, cluster: str, started: list[Daemon]) -> None:
        target = self.cluster_object(cluster)
        o2cb_controld = self.daemon(O2CB_CONTROLD)
        if o2cb_controld.is_running() and not target.exists():
            with self.report.step(f"Starting {o2cb_controld.label}"):
                raise StepError(
                    f"{o2cb_controld.label} is running, but cluster {cluster} is not in configfs"
                )
        outcome = self.start_daemon(
            o2cb_controld, started, ready=target.exists,
            what=f"cluster {cluster} has not appeared in configfs",
        )
        if outcome is Outcome.DONE:
            with self.report.step("Setting O2CB cluster timeouts "):
                self.set_timeouts(target)
        self.load_filesystem("ocfs2")
        self.start_daemon(self.daemon(OCFS2_CONTROLD), started)

    # -- offline -------------------------------------------------------------

    def clean_up(self, cluster: str, force: bool) -> None:
        """o2cb_controld removes its cluster when it stops; after a SIGKILL it cannot."""
        target = self.cluster_object(cluster)
        if not target.exists() or target.heartbeat_regions():
            return
        with self.report.step(f"Removing cluster {cluster} from configfs"):
            failures = self.remove_cluster(target, strict=not force)
            if failures:
                raise failures[0]

    def roll_back(self, cluster: str, started: list[Daemon], loaded_ocfs2: bool) -> None:
        super().roll_back(cluster, started, loaded_ocfs2)
        if any(daemon.name == O2CB_CONTROLD for daemon in started):
            self.remove_cluster(self.cluster_object(cluster), strict=False)

    # -- status --------------------------------------------------------------

    def status_cluster(self, report: StatusReport, cluster: str) -> None:
        self.status_daemons(report)
        # The o2nm cluster o2cb_controld built: registered, timeouts, heartbeat.
        O2cbStack.status_cluster(self, report, cluster)
        report.facts["online"] = self.is_online(cluster)
