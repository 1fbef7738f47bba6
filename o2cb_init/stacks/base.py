"""What every stack shares: the run's context and the skeleton of its verbs.

A stack module says only what differs, as a class of the parts it uses
(StackParts); Stack wraps it in what is the same for all of them: load and
unload the drivers, the refusal while a volume needs the stack, clean the
userdlm domains and unload ocfs2 around offline, and the drivers and
debugfs around status.  No stack inherits
from another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from ..config import Settings
from ..configfs import Configfs
from ..kernel import Kernel
from ..report import Reporter
from ..status import StatusReport
from ..system import System

if TYPE_CHECKING:
    from ..parts.drivers import Drivers, DriverSet
    from ..plan import Planner


@dataclass
class Context:
    """Everything a verb needs, built once by the command line.

    ``observed``: the configuration file was missing or invalid, and the
    settings describe what the kernel runs (stop and status only).
    """

    system: System
    settings: Settings
    report: Reporter
    observed: bool = False
    kernel: Kernel = field(init=False)
    steps: Steps = field(init=False)

    def __post_init__(self) -> None:
        self.kernel = Kernel(self.system)
        self.steps = Steps(self)

    @cached_property
    def planner(self) -> Planner:
        """The run's planner, made when a verb first plans (status never does)."""
        from ..plan import Planner

        return Planner(self.system, self.report)

    @property
    def configfs(self) -> Configfs:
        return self.kernel.configfs()


class Steps:
    """Where parts add their steps: the run's planner (plan.py), made on first use."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def add(self, title: str | None, carry_out: Callable[[], None],
            needed: Callable[[], bool] | None = None) -> None:
        self.context.planner.add(title, carry_out, needed)

    def note(self, text: str) -> None:
        self.context.planner.note(text)


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
        if cluster:
            self.parts.status(report, cluster)
            self.userdlm.status(report)
        self.drivers.status_debugfs(report)
        return report
