"""What crosses the seam: one change to the machine, and who decides whether it is made.

System (system.py) never changes the machine on its own say: before each
change it hands a Change to its recorder, which answers None ("make it
now") or the result the change is foreseen to have (it is only planned).
plan.py's Planner is the recorder of every verb; nothing else needs to
know how a plan is built.
"""

from __future__ import annotations

from collections.abc import Callable

from .records import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # a protocol is for mypy only: typing costs a status 3 ms


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def reason(self) -> str:
        """The command's own explanation, one line, for an error message.

        The first line: mount(8) follows its reason with a hint about dmesg.
        """
        text = (self.stderr or self.stdout).strip()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[0] if lines else f"exit status {self.returncode}"


SUCCESS = CommandResult(0, "", "")

# The kinds of change, each with the words a dry run prints after "would".
RUN, WRITE, MKDIR, RMDIR, REMOVE, REPLACE, START, SIGNAL = (
    "run", "write", "mkdir", "rmdir", "remove", "replace", "start", "signal")


@dataclass(frozen=True)
class Change:
    """One change: a command, a file or attribute written, a directory made or
    removed, a daemon started or signalled.  ``path`` is root-relative (for a
    daemon, its program); ``argv`` is a command's; ``text`` describes a signal."""

    kind: str
    path: str = ""
    value: str = ""
    argv: tuple[str, ...] = ()
    text: str = ""

    def __str__(self) -> str:
        if self.kind == RUN:
            return "run " + " ".join(self.argv)
        if self.kind == SIGNAL:
            return self.text
        return _WORDS[self.kind].format(path=self.path, value=repr(self.value))


_WORDS = {
    WRITE: "write {value} to {path}",
    MKDIR: "create directory {path}",
    RMDIR: "remove directory {path}",
    REMOVE: "remove {path}",
    REPLACE: "write {path}",
    START: "start {path}",
}


class Recorder(Protocol):
    """What System asks before each change, and tells after it."""

    def record(self, change: Change) -> CommandResult | None:
        """None: make the change now.  A result: the change is only planned,
        and this is what it is foreseen to answer."""

    def undo(self, title: str, action: Callable[[], None]) -> None:
        """A change was made (or planned): ``action`` takes it back."""


class Immediately:
    """The recorder outside any verb's plan: every change is made, none is undone."""

    def record(self, change: Change) -> CommandResult | None:
        return None

    def undo(self, title: str, action: Callable[[], None]) -> None:
        return None
