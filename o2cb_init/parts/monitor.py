"""ocfs2-tools' o2hbmonitor, which logs a slow disk heartbeat: best effort.

The reference starts it with the classic cluster; the cluster works without
it, so neither a missing program nor one that will not start fails a verb.
"""

from __future__ import annotations

from ..daemons import Daemon, DaemonError
from ..system import System

HEARTBEAT_MONITOR = "o2hbmonitor"


class HeartbeatMonitor:
    def __init__(self, system: System, stack: str) -> None:
        self.system = system
        self.stack = stack

    def daemon(self) -> Daemon | None:
        monitor = Daemon(self.system, HEARTBEAT_MONITOR, self.stack, search_path=False)
        return monitor if monitor.locate() else None

    def start(self) -> None:
        monitor = self.daemon()
        if monitor is None or monitor.is_running():
            return
        try:
            monitor.start()
        except DaemonError as error:
            self.system.probe(f"{HEARTBEAT_MONITOR} did not start: {error}")

    def stop(self) -> None:
        monitor = self.daemon()
        if monitor is None:
            return
        try:
            monitor.stop(force=True)
        except DaemonError as error:
            self.system.probe(f"{HEARTBEAT_MONITOR} did not stop: {error}")
