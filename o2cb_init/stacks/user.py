"""What the userspace stacks share: the `user` plugin and the control daemons.

heartbeat2, cman and pcmk all leave heartbeat and membership to userspace:
on stack-glue kernels they use the `user` plugin (ocfs2_stack_user) and name
themselves in /sys/fs/ocfs2/cluster_stack; on 2007-era kernels they use the
`user` heartbeat method.  cman and pcmk also run control daemons that
speak for the cluster to the kernel through /dev/ocfs2_control.  While a
volume is mounted the kernel needs those daemons (it restarts the machine
when the holder of /dev/ocfs2_control goes away), so they are stopped only
after checking that no heartbeat region is active and no OCFS2 volume is
mounted.

These stacks keep the o2nm cluster handling of the classic stack (the
configfs cluster, its timeouts, removing it, the ocfs2 driver), which they
inherit from O2cbStack instead of repeating it.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from ..daemons import Daemon, DaemonError
from ..errors import MissingProgramError, StepError, StepFailed, UnsupportedError
from ..kernel import Generation
from ..report import Outcome
from .base import STACKGLUE_MODULE, StatusReport, loaded_word
from .o2cb import O2cbStack


class UserspaceStack(O2cbStack):
    """A stack whose heartbeat runs in userspace."""

    plugin = "user"
    heartbeat_method = "user"
    uses_heartbeat_monitor = False  # it watches the disk heartbeat only

    def require_supported(self) -> Generation:
        """Refuse this stack on a kernel that cannot run it, and leave nothing loaded.

        Probing may load ocfs2_stackglue; when the stack is refused, that
        module goes again unless it was there before.  A kernel with neither
        the stack glue nor a node manager in configfs yet may be a 2007-era
        one that shows cluster/heartbeat_mode only once its drivers are
        loaded: that case is decided by load() afterwards.
        """
        had_glue = self.kernel.has_stackglue()
        generation = self.probe_generation()
        if generation in self.generations:
            return generation
        if self._undecided(generation):
            self.system.probe("no stack glue: deciding the kernel generation after loading")
            return generation
        if not had_glue and self.kernel.is_loaded(STACKGLUE_MODULE):
            self.system.run(["modprobe", "-r", STACKGLUE_MODULE])
        raise UnsupportedError(self.unsupported_reason(generation))

    def _undecided(self, generation: Generation) -> bool:
        return (
            generation is Generation.LEGACY
            and Generation.HEARTBEAT_MODE in self.generations
            and not self.context.configfs.available()
        )

    def load(self) -> Outcome:
        outcome = super().load()
        generation = self.kernel.generation()
        if generation not in self.generations:
            # Only now known (see require_supported): take back what was loaded.
            self.unload()
            raise UnsupportedError(self.unsupported_reason(generation))
        return outcome

    def status_drivers(self, report: StatusReport) -> None:
        super().status_drivers(report)
        loaded = self.kernel.has_filesystem("ocfs2")
        report.add("ocfs2_driver", loaded, f'Driver for "ocfs2": {loaded_word(loaded)}')


class ControlDaemonStack(UserspaceStack):
    """A userspace stack whose cluster is run by control daemons (cman, pcmk)."""

    daemon_names: ClassVar[tuple[str, ...]]  # in the order they start

    def daemons(self) -> list[Daemon]:
        if not hasattr(self, "_daemons"):
            self._daemons = [Daemon(self.system, name, self.name) for name in self.daemon_names]
        return self._daemons

    def daemon(self, name: str) -> Daemon:
        return next(daemon for daemon in self.daemons() if daemon.name == name)

    def require_daemons(self) -> None:
        """Every daemon must be installed before anything is started (LSB exit 5)."""
        for daemon in self.daemons():
            if daemon.locate() is None:
                raise MissingProgramError(
                    f"cluster stack {self.name} is not supported here: no {daemon.name}"
                    f" (looked for {' and '.join(daemon.candidates())} in /sbin, /usr/sbin"
                    " and PATH)"
                )

    # -- online --------------------------------------------------------------

    def is_online(self, cluster: str) -> bool:
        return all(daemon.is_running() for daemon in self.daemons())

    def online(self, cluster: str) -> Outcome:
        self.require_daemons()
        self.set_cluster_stack()
        if self.is_online(cluster):
            self.report.line(f"Cluster {cluster} already online")
            return Outcome.ALREADY
        self.check_membership(cluster)
        started: list[Daemon] = []
        loaded_ocfs2 = not self.kernel.has_filesystem("ocfs2")
        try:
            self.bring_up(cluster, started)
        except (StepFailed, StepError):
            self.roll_back(cluster, started, loaded_ocfs2)
            raise
        return Outcome.DONE

    def check_membership(self, cluster: str) -> None:
        """Make sure the cluster manager runs this cluster; nothing to check by default."""

    def bring_up(self, cluster: str, started: list[Daemon]) -> None:
        """Load ocfs2 and start the daemons; each daemon started is added to ``started``."""
        self.load_filesystem("ocfs2")
        for daemon in self.daemons():
            self.start_daemon(daemon, started)

    def start_daemon(self, daemon: Daemon, started: list[Daemon], ready: Any = None,
                     what: str = "") -> Outcome:
        if daemon.is_running():
            return Outcome.ALREADY
        with self.report.step(f"Starting {daemon.label}"):
            try:
                daemon.start(ready, what)
            except DaemonError as error:
                if daemon.is_running():
                    started.append(daemon)
                raise StepError(f"Unable to start {daemon.label}: {error}") from None
        started.append(daemon)
        self.system.plan.record(
            f"starting {daemon.label}", lambda: self._stop_if_running(daemon)
        )
        return Outcome.DONE

    def roll_back(self, cluster: str, started: list[Daemon], loaded_ocfs2: bool) -> None:
        """After a failed online: stop what this run started, so nothing is left half up."""
        for daemon in reversed(started):
            with contextlib.suppress(StepFailed):
                self.stop_daemon(daemon, force=True)
        if loaded_ocfs2:
            with contextlib.suppress(StepFailed):
                self.unload_ocfs2()

    # -- offline -------------------------------------------------------------

    def offline(self, cluster: str, force: bool = False) -> Outcome:
        running = [daemon for daemon in reversed(self.daemons()) if daemon.is_running()]
        if not running:
            self.clean_up(cluster, force)
            return self.unload_ocfs2()
        with self.report.step(f"Stopping {running[0].label}"):
            self.check_safe_to_stop()
            self._stop(running[0], force)
        for daemon in running[1:]:
            self.stop_daemon(daemon, force)
        self.clean_up(cluster, force)
        self.unload_ocfs2()
        return Outcome.DONE

    def check_safe_to_stop(self) -> None:
        """The daemons must stay while a volume depends on them (KERNEL.md)."""
        for target in self.context.configfs.clusters():
            regions = target.heartbeat_regions()
            if regions:
                raise StepError(
                    f"Unable to stop cluster as heartbeat region {regions[0]} is still active"
                )
        mounts = self.kernel.mounts_of_type("ocfs2")
        if mounts:
            raise StepError(
                f"Unable to stop cluster as OCFS2 volume {mounts[0].device} is still mounted"
                f" on {mounts[0].mountpoint}"
            )

    def stop_daemon(self, daemon: Daemon, force: bool = False) -> Outcome:
        if not daemon.is_running():
            return Outcome.ALREADY
        with self.report.step(f"Stopping {daemon.label}"):
            self._stop(daemon, force)
        return Outcome.DONE

    def _stop_if_running(self, daemon: Daemon) -> None:
        if daemon.is_running():
            self._stop(daemon, force=True)

    def _stop(self, daemon: Daemon, force: bool) -> None:
        try:
            daemon.stop(force)
        except DaemonError as error:
            raise StepError(f"Unable to stop {daemon.label}: {error}") from None

    def clean_up(self, cluster: str, force: bool) -> None:
        """What the daemons should have taken along when they stopped."""

    def check_can_unload(self) -> None:
        for daemon in self.daemons():
            pids = daemon.pids()
            if pids:
                raise StepError(
                    f"Unable to unload modules while {daemon.label} is running"
                    f" (pid {', '.join(map(str, pids))})"
                )
        super().check_can_unload()

    # -- status --------------------------------------------------------------

    def status_daemons(self, report: StatusReport) -> None:
        facts: dict[str, Any] = {}
        for daemon in self.daemons():
            path = daemon.locate()
            pids = daemon.pids()
            facts[daemon.name] = {"program": path, "pids": pids, "running": bool(pids)}
            if pids:
                state = f"running (pid {', '.join(map(str, pids))})"
            else:
                state = "not running" if path else "not installed"
            report.lines.append(f"Checking for control daemon {daemon.label}: {state}")
        report.facts["daemons"] = facts

    def status_cluster(self, report: StatusReport, cluster: str) -> None:
        report.facts["cluster"] = cluster
        self.status_daemons(report)
        online = self.is_online(cluster)
        report.add(
            "online", online,
            f'Checking cluster "{cluster}" ({self.name}): {"Online" if online else "Offline"}',
        )
