"""What every stack module works with: the run's context and the stack interface.

Stacks do not inherit from one another: each module combines parts
(o2cb_init/parts) and says in one place what its load, online, offline,
unload and status are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..config import Settings
from ..configfs import Configfs
from ..kernel import Kernel
from ..report import Outcome, Reporter
from ..status import StatusReport, loaded_word
from ..system import System

__all__ = ["Context", "Stack", "StatusReport", "loaded_word"]


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

    def __post_init__(self) -> None:
        self.kernel = Kernel(self.system)

    @property
    def configfs(self) -> Configfs:
        return Configfs(self.system, self.kernel.configfs_mountpoint())


class Stack(Protocol):
    """What service.py asks of a stack."""

    name: str

    def check_online(self, cluster: str) -> None:
        """Find what would make online fail, before anything changes."""

    def load(self) -> Outcome: ...

    def online(self, cluster: str) -> Outcome: ...

    def offline(self, cluster: str, force: bool = False) -> Outcome: ...

    def unload(self) -> Outcome: ...

    def is_online(self, cluster: str) -> bool: ...

    def status(self, cluster: str) -> StatusReport: ...
