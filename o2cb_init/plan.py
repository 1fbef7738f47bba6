"""The changes of one run, each with how to take it back.

Every change a verb makes to the machine (a module loaded, a file system
mounted, a configfs object created, an attribute set, a daemon started, the
baseline record written) is entered here with its undo once it has been
made.  When `start`, `online` or `load` fails at any point, the changes of
this run are undone in reverse order, so the machine is left as it was
before the run: a retry starts from a clean state, and a failed boot leaves
nothing half-done.  `stop` and `force-offline` never undo: a stop goes as
far as safety allows and reports where it stopped.

An undo that fails itself is reported on stderr and the others still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import O2cbError


@dataclass
class Step:
    """One change that was made: what it was and how to take it back."""

    title: str
    undo: Callable[[], None]


@dataclass
class Plan:
    """The journal of one run's changes; undone in reverse when the run fails."""

    done: list[Step] = field(default_factory=list)
    recording: bool = False

    def record(self, title: str, undo: Callable[[], None]) -> None:
        if self.recording:
            self.done.append(Step(title, undo))

    def titles(self) -> list[str]:
        return [step.title for step in self.done]

    @contextmanager
    def all_or_nothing(self, problem: Callable[[str], None]) -> Iterator[None]:
        """Run the body; if it fails, undo what it did, newest first, and re-raise."""
        outer = self.recording
        mark = len(self.done)
        self.recording = True
        try:
            yield
        except BaseException:
            self.undo_since(mark, problem)
            raise
        finally:
            self.recording = outer

    def undo_since(self, mark: int, problem: Callable[[str], None]) -> None:
        self.recording = False
        steps, self.done = self.done[mark:], self.done[:mark]
        for step in reversed(steps):
            try:
                step.undo()
            except (O2cbError, OSError) as error:
                reason = getattr(error, "message", None) or getattr(error, "strerror", None)
                problem(f"o2cb: could not undo {step.title}: {reason or error}")
