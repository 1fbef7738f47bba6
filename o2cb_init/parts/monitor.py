"""ocfs2-tools' o2hbmonitor, which logs a slow disk heartbeat: best effort.

The reference starts it with the classic cluster; the cluster works without
it, so neither a missing program nor one that will not start fails a verb.
Like the reference, start runs it and goes on once it returns: o2hbmonitor
daemonizes (its parent returns at once), refuses a second instance itself
and reports its own problems to syslog, so there is no settle wait.  A
launch that fails, or that returns a failure, is shown with -v.
daemons.py is imported only by online and offline, never by status.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..context import Context
    from ..daemons import Daemon

HEARTBEAT_MONITOR = "o2hbmonitor"
# The real one returns within milliseconds; one that never daemonizes is
# left running after this long.
LAUNCH_RETURN = 1.0


class HeartbeatMonitor:
    def __init__(self, context: Context, stack: str) -> None:
        self.system = context.system
        self.steps = context.steps
        self.stack = stack

    def daemon(self) -> Daemon | None:
        from ..daemons import Daemon

        monitor = Daemon(self.system, HEARTBEAT_MONITOR, self.stack, search_path=False)
        return monitor if monitor.locate() else None

    def start(self) -> None:
        """Run it unless it runs already; wait only for its launch to return."""
        monitor = self.daemon()
        if monitor is not None and not monitor.is_running():
            self.steps.add(None, lambda: self.launch(monitor))

    def launch(self, monitor: Daemon) -> None:
        from ..daemons import DaemonError

        try:
            child = monitor.launch()
        except DaemonError as error:
            self.system.probe(f"{HEARTBEAT_MONITOR} did not start: {error}")
            return
        if child is None:
            return
        status = monitor.returned(child, min(LAUNCH_RETURN, monitor.timeout))
        if status is None:
            self.system.probe(f"{HEARTBEAT_MONITOR} stays in the foreground; leaving it running")
        elif status != 0:
            self.system.probe(f"{HEARTBEAT_MONITOR} exited with status {status}")

    def stop(self) -> None:
        from ..daemons import DaemonError

        monitor = self.daemon()
        if monitor is None:
            return
        try:
            monitor.stop(force=True)
        except DaemonError as error:
            self.system.probe(f"{HEARTBEAT_MONITOR} did not stop: {error}")
