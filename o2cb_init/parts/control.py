"""Control daemons of the userspace stacks (cman, pcmk): find, start, stop, show.

While a volume is mounted the kernel needs them (it restarts the machine
when the holder of /dev/ocfs2_control goes away), so they are stopped only
after checking that no heartbeat region is active and no OCFS2 volume is
mounted or holds a lockspace.  Every stack's stop refuses for the volume
first (volumes.py), whether or not a daemon of ours runs; the check here
guards the daemons themselves.
"""

from __future__ import annotations

from collections.abc import Callable

from ..daemons import Daemon, DaemonError
from ..errors import MissingProgramError, StepError
from ..status import StatusReport
from .volumes import in_use_refusal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..context import Context
    from .drivers import Drivers


class ControlDaemons:
    """The daemons of one stack, in the order they start."""

    def __init__(self, context: Context, stack: str, names: tuple[str, ...]) -> None:
        self.system = context.system
        self.kernel = context.kernel
        self.steps = context.steps
        self.stack = stack
        self.daemons = [Daemon(self.system, name, stack) for name in names]

    def daemon(self, name: str) -> Daemon:
        return next(daemon for daemon in self.daemons if daemon.name == name)

    def require(self) -> None:
        """Every daemon must be installed before anything is started (LSB exit 5)."""
        for daemon in self.daemons:
            if daemon.locate() is None:
                raise MissingProgramError(
                    f"cluster stack {self.stack} is not supported here: no {daemon.name}"
                    f" (looked for {' and '.join(daemon.candidates())} in /sbin, /usr/sbin"
                    " and PATH)"
                )

    def begin_online(self, cluster: str, drivers: Drivers, online: bool) -> bool:
        """What a daemon stack's online does first: every daemon must be installed,
        and the stack is named in cluster_stack.  False, with the reference's line,
        when the cluster is ``online`` already."""
        self.require()
        drivers.set_cluster_stack()
        if online:
            self.steps.note(f"Cluster {cluster} already online")
        return not online

    def all_running(self) -> bool:
        return all(daemon.is_running() for daemon in self.daemons)

    def running(self) -> list[Daemon]:
        """The running daemons, in the order they stop."""
        return [daemon for daemon in reversed(self.daemons) if daemon.is_running()]

    # -- start ---------------------------------------------------------------

    def start(self, daemon: Daemon, ready: Callable[[], bool] | None = None,
              what: str = "") -> bool:
        """Start one daemon unless it runs; a failed start stops it again.  True when
        it is to be started."""
        if daemon.is_running():
            return False

        def start() -> None:
            try:
                daemon.start(ready, what)
            except DaemonError as error:
                self._stop_if_running(daemon)
                raise StepError(f"Unable to start {daemon.label}: {error}") from None
            self.system.record_undo(
                f"starting {daemon.label}", lambda: self._stop_if_running(daemon)
            )

        self.steps.add(f"Starting {daemon.label}", start)
        return True

    # -- stop ----------------------------------------------------------------

    def check_safe_to_stop(self) -> None:
        """The daemons must stay while a volume depends on them (doc/kernel.md)."""
        for target in self.kernel.configfs().clusters():
            regions = target.heartbeat_regions()
            if regions:
                raise StepError(
                    f"Unable to stop cluster as heartbeat region {regions[0]} is still active"
                )
        reason = in_use_refusal(self.system, self.kernel)
        if reason:
            raise StepError(reason)

    def stop_all(self, force: bool) -> None:
        """Stop the running daemons, newest first, once nothing depends on them."""
        running = self.running()
        if not running:
            return

        def check_and_stop() -> None:
            self.check_safe_to_stop()
            self._stop(running[0], force)

        self.steps.add(f"Stopping {running[0].label}", check_and_stop)
        for daemon in running[1:]:
            if daemon.is_running():
                self.stop(daemon, force)

    def stop(self, daemon: Daemon, force: bool) -> None:
        self.steps.add(f"Stopping {daemon.label}", lambda: self._stop(daemon, force))

    def _stop_if_running(self, daemon: Daemon) -> None:
        if daemon.is_running():
            self._stop(daemon, force=True)

    def _stop(self, daemon: Daemon, force: bool) -> None:
        try:
            daemon.stop(force)
        except DaemonError as error:
            raise StepError(f"Unable to stop {daemon.label}: {error}") from None

    def check_none_running(self) -> None:
        for daemon in self.daemons:
            pids = daemon.pids()
            if pids:
                raise StepError(
                    f"Unable to unload modules while {daemon.label} is running"
                    f" (pid {', '.join(map(str, pids))})"
                )

    # -- status --------------------------------------------------------------

    def status(self, report: StatusReport) -> None:
        facts: dict[str, Any] = {}
        for daemon in self.daemons:
            path = daemon.locate()
            pids = daemon.pids()
            facts[daemon.name] = {"program": path, "pids": pids, "running": bool(pids)}
            if pids:
                state = f"running (pid {', '.join(map(str, pids))})"
            else:
                state = "not running" if path else "not installed"
            report.lines.append(f"Checking for control daemon {daemon.label}: {state}")
        report.facts["daemons"] = facts
