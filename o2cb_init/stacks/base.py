"""What every stack shares: the skeleton of its verbs.

A stack module says only what differs, as a class of the parts it uses
(StackParts); Stack wraps it in what is the same for all of them: load and
unload the drivers, the refusal while a volume needs the stack, clean the
userdlm domains and unload ocfs2 around offline, and the drivers and
debugfs around status.  No stack inherits from another.  The run's
context is context.py.
"""

from __future__ import annotations

from collections.abc import Callable

from ..context import Context, Steps
from ..status import StatusReport

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from ..parts.drivers import Drivers, DriverSet
else:
    Protocol = object  # a protocol is for mypy only: typing costs a status 3 ms

__all__ = ["Context", "Stack", "StackParts", "Steps"]


class StackParts(Protocol):
    """What a stack module defines: its own parts of online, offline and status."""

    name: str
    drivers: DriverSet

    def check_online(self, cluster: str) -> None:
        """Find what would make online fail, before anything changes."""

    def online(self, cluster: str, drivers: Drivers) -> None: ...

    def is_online(self, cluster: str) -> bool: ...

    def offline(self, cluster: str, force: bool) -> None: ...

    def stopping_title(self, cluster: str) -> str:
        """The title of offline's first step, which a stop under a volume fails."""

    def check_unload(self) -> None:
        """Refuse to unload while something of this stack still runs."""

    def status(self, report: StatusReport, cluster: str) -> None: ...


class Stack:
    """A cluster stack: the shared skeleton around one stack module's parts."""

    def __init__(self, context: Context, parts: StackParts) -> None:
        from ..parts.drivers import Drivers
        from ..parts.userdlm import UserdlmDomains

        self.parts = parts
        self.name = parts.name
        self.drivers = Drivers(context, parts.name, parts.drivers)
        self.userdlm = UserdlmDomains(context)

    def check_online(self, cluster: str) -> None:
        self.parts.check_online(cluster)

    def load(self) -> None:
        self.drivers.load()

    def online(self, cluster: str) -> None:
        self.parts.online(cluster, self.drivers)

    def is_online(self, cluster: str) -> bool:
        return self.parts.is_online(cluster)

    def reloader(self) -> Callable[[str], None]:
        """What applies the files to the running cluster, where the stack builds it
        from them; asked before anything else, so that a stack without one says so."""
        from ..errors import UnimplementedError

        reload: Callable[[str], None] | None = getattr(self.parts, "reload", None)
        if reload is None:
            raise UnimplementedError(
                f"reload: cluster stack {self.name} takes nothing from the files that can"
                " change online; restart applies the configuration"
            )
        return reload

    def offline(self, cluster: str, force: bool = False) -> None:
        self.drivers.refuse_in_use(self.parts.stopping_title(cluster))
        self.userdlm.clean(force)
        self.parts.offline(cluster, force)
        self.drivers.unload_ocfs2()

    def unload(self) -> None:
        self.drivers.refuse_in_use(None)
        self.parts.check_unload()
        self.drivers.check_no_cluster()
        self.userdlm.clean()
        self.drivers.unload()

    def status(self, cluster: str) -> StatusReport:
        report = StatusReport()
        self.drivers.status(report)
        self.drivers.status_left_loaded(report)
        if cluster:
            self.parts.status(report, cluster)
            self.userdlm.status(report)
        self.drivers.status_debugfs(report)
        return report
