"""The run's context: everything a verb and its parts work with, built once.

The parts (parts/) take it; the stacks (stacks/) hand it on.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from .config import Settings
from .configfs import Configfs
from .kernel import Kernel
from .records import dataclass, field
from .report import Reporter
from .system import System

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .plan import Planner


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
        from .plan import Planner

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


