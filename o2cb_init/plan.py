"""Verbs as plans: probe once, list the steps, then carry them out or print them.

A verb that changes the machine first runs its code in planning mode
(System.planning): it reads the machine once, and each change it would make
is not made but entered in the step that makes it, with what it changes
and how that is undone; the planned-state overlay (overlay.py) answers
later questions as the plan would leave the machine.  What it builds is a
Plan: the steps in order, each with its reference-style title (or none,
for a quiet change such as the baseline record), what it changes, how it
is undone, and the code that makes the change.
A step that the probe already shows cannot succeed (a refusal) carries
its error, and so does a plan whose verb stopped between steps.

`--dry-run` prints that plan.  A real run carries out the same plan: each
step's code runs, and every change it makes is entered in the run's
journal with its undo.  When a step of an all-or-nothing part fails
(`load`, `online`, `start`, the start of `restart`), the changes of that
part are undone in reverse order, so the machine is left as it was before
the run.  `stop` and `force-offline` never undo: a stop goes as far as
safety allows and reports where it stopped.

An undo that fails itself is reported on stderr and the others still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import O2cbError


@dataclass
class Step:
    """One step of a plan: its title, what it changes and how that is undone, and
    the code that makes the change (and enters each undo in the journal).

    ``title`` None: a quiet step, which the output does not show (a dry run
    still lists its changes).  ``foreseen``: the error the probe found this
    step will end in.
    """

    title: str | None
    carry_out: Callable[[], None]
    changes: list[str] = field(default_factory=list)
    undos: list[str] = field(default_factory=list)  # how its changes are taken back
    foreseen: Exception | None = None
    note: str | None = None  # a line of output at this point of the plan
    # Asked when the step is carried out: False skips it without a word.  For a
    # change whose need the probe cannot know for sure (what a killed daemon
    # left, whether the kernel still holds a module).  ``expected``: what it
    # answered as the plan would leave the machine; a dry run shows only
    # the steps it expects.
    needed: Callable[[], bool] | None = None
    expected: bool = True


@dataclass
class Part:
    """A run of steps that is undone as a whole when one of them fails, or never."""

    all_or_nothing: bool
    steps: list[Step] = field(default_factory=list)
    # The error that ended the planning between steps: the verb stops there.
    ending: Exception | None = None


@dataclass
class Plan:
    parts: list[Part] = field(default_factory=list)

    @property
    def steps(self) -> list[Step]:
        return [step for part in self.parts for step in part.steps]

    def titles(self) -> list[str]:
        return [step.title for step in self.steps if step.title]


@dataclass
class Undo:
    """A change that was made: what it was and how to take it back."""

    title: str
    undo: Callable[[], None]


@dataclass
class Journal:
    """The changes a real run made, each with its undo; undone in reverse on failure."""

    done: list[Undo] = field(default_factory=list)
    recording: bool = False

    def record(self, title: str, undo: Callable[[], None]) -> None:
        if self.recording:
            self.done.append(Undo(title, undo))

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
        changes, self.done = self.done[mark:], self.done[:mark]
        for change in reversed(changes):
            try:
                change.undo()
            except (O2cbError, OSError) as error:
                reason = getattr(error, "message", None) or getattr(error, "strerror", None)
                problem(f"o2cb: could not undo {change.title}: {reason or error}")
