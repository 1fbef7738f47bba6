"""ocfs2-tools' o2hbmonitor, which logs a slow disk heartbeat: best effort.

The reference starts it with the classic cluster; the cluster works without
it, so neither a missing program nor one that will not start fails a verb.
Like the reference, start launches it and goes on: o2hbmonitor daemonizes
and reports its own problems to syslog, so there is nothing to wait for.
A launch that fails (the program cannot be executed) is shown with -v.
daemons.py is imported only by online and offline, never by status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..system import System

if TYPE_CHECKING:
    from ..daemons import Daemon

HEARTBEAT_MONITOR = "o2hbmonitor"


class HeartbeatMonitor:
    def __init__(self, system: System, stack: str) -> None:
        self.system = system
        self.stack = stack

    def daemon(self) -> Daemon | None:
        from ..daemons import Daemon

        monitor = Daemon(self.system, HEARTBEAT_MONITOR, self.stack, search_path=False)
        return monitor if monitor.locate() else None

    def start(self) -> None:
        """Launch it unless it runs already; never wait for it."""
        from ..daemons import DaemonError

        monitor = self.daemon()
        if monitor is None or monitor.is_running():
            return
        try:
            monitor.launch()
        except DaemonError as error:
            self.system.probe(f"{HEARTBEAT_MONITOR} did not start: {error}")

    def stop(self) -> None:
        from ..daemons import DaemonError

        monitor = self.daemon()
        if monitor is None:
            return
        try:
            monitor.stop(force=True)
        except DaemonError as error:
            self.system.probe(f"{HEARTBEAT_MONITOR} did not stop: {error}")
