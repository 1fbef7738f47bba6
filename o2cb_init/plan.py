"""Verbs as plans: the planner builds a verb's steps first, then carries them out.

A verb that changes the machine runs its stack code twice:

1. **Planning.**  The stack's operations run once against the machine as it
   is.  Where they would change something they add a step, by an explicit
   call ``steps.add('Loading filesystem "configfs"', load_configfs)``; the
   planner runs that function at once, in planning mode: every change it
   asks the seam for (system.py) is handed to the planner's recorder, which
   enters it in the step (what a dry run prints after "would") and lets the
   kernel model (model.py) enter what the change would leave in the planned
   state, which answers every later read.  Nothing is changed.  A refusal
   the probe finds (a heartbeat region active, a program missing) is the
   foreseen outcome of its step, and the plan ends there.
2. **Carrying out.**  Each step's function runs again, in order, now for
   real: the seam makes each change and the run's journal keeps how to undo
   it.  When a step of an all-or-nothing part (`load`, `online`, `start`,
   the start of `restart`) fails, that part's changes are undone newest
   first; `stop` and `force-offline` are never undone.  `--dry-run` prints
   the plan instead.

Some needs cannot be known for sure while planning (whether the kernel
still holds a module, what a killed daemon left): such a step carries a
``needed`` condition, asked again when it is carried out.  A change asked
for outside any step while planning is a programming error (RuntimeError),
so that none goes unplanned.  Outside a verb's plan (`configure`, an undo)
a step is carried out at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .changes import Change, CommandResult
from .errors import O2cbError, StepError, StepFailed
from .model import KernelModel
from .overlay import PlannedState
from .records import dataclass, field
from .report import Reporter
from .system import System

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

Operations = Callable[[], object]


@dataclass
class Step:
    """One step: its title (None: a quiet one the output does not show), the
    function that makes its changes, and, once planned, what it changes and
    how that is undone.  ``foreseen``: the error the probe found it will end in.
    ``needed``: asked when carried out, which skips the step when False;
    ``expected``: what it answered while planning (a dry run shows only those)."""

    title: str | None
    carry_out: Callable[[], None]
    planned: list[Change] = field(default_factory=list)
    undos: list[str] = field(default_factory=list)
    foreseen: Exception | None = None
    note: str | None = None  # a line of output at this point of the plan
    needed: Callable[[], bool] | None = None
    expected: bool = True

    @property
    def changes(self) -> list[str]:
        """What it changes, as a dry run shows each after "would"."""
        return [str(change) for change in self.planned]


@dataclass
class Part:
    """A run of steps that is undone as a whole when one of them fails, or never."""

    all_or_nothing: bool
    steps: list[Step] = field(default_factory=list)
    ending: Exception | None = None  # the error that ended the planning between steps


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


class Planner:
    """Builds and carries out the plans of one run; the seam's recorder."""

    def __init__(self, system: System, report: Reporter) -> None:
        self.system = system
        self.report = report
        self.journal = Journal()
        self.building: Part | None = None  # the part being planned
        self.open: Step | None = None  # the step whose function runs
        self.model = KernelModel(system, system.state)
        system.recorder = self

    @property
    def planning(self) -> bool:
        """Changes are entered in a step, not made: while planning, and in a dry run."""
        return self.building is not None or self.system.dry_run

    # -- what the parts call ---------------------------------------------------

    def add(self, title: str | None, carry_out: Callable[[], None],
            needed: Callable[[], bool] | None = None) -> None:
        """A step: while planning, enter it in the plan; else carry it out now.

        Raise StepError in ``carry_out`` to fail with a reason; it becomes
        StepFailed (exit 1) once reported.  Inside another step's function it
        is part of that step.
        """
        if self.open is not None:
            carry_out()
        elif self.building is not None:
            self._plan_step(Step(title, carry_out, needed=needed))
        else:
            self._carry_out(Step(title, carry_out, needed=needed))

    def note(self, text: str) -> None:
        """A line of output; while planning, at this point of the plan."""
        if self.building is None:
            self.report.line(text)
        elif self.open is None:
            self.building.steps.append(Step(None, _nothing, note=text))

    # -- the recorder (changes.Recorder) ----------------------------------------

    def record(self, change: Change) -> CommandResult | None:
        if not self.planning:
            return None
        if self.open is None:
            raise RuntimeError(f"planned a change outside a step: {change}")
        self.open.planned.append(change)
        return self.model.apply(change)

    def undo(self, title: str, action: Callable[[], None]) -> None:
        if not self.planning:
            self.journal.record(title, action)
        elif self.open is not None:
            self.open.undos.append(title)
        elif self.building is not None:  # between steps: recorded at this point of the run
            self.building.steps.append(Step(None, lambda: self.journal.record(title, action)))

    # -- planning --------------------------------------------------------------

    def plan(self, *parts: tuple[bool, Operations]) -> Plan:
        """Plan each part's operations in turn; a failure ends the plan where it arises.

        Each part is (all_or_nothing, operations).
        """
        built = Plan()
        self.system.state = PlannedState()
        self.model = KernelModel(self.system, self.system.state)
        try:
            for all_or_nothing, operations in parts:
                part = Part(all_or_nothing)
                built.parts.append(part)
                self.building = part
                try:
                    operations()
                except (O2cbError, OSError) as error:
                    if not part.steps or part.steps[-1].foreseen is not error:
                        part.ending = error  # raised between steps
                    break
        finally:
            self.building = None
            if not self.system.dry_run:
                self.system.state = PlannedState()  # the real machine answers again
        return built

    def _plan_step(self, step: Step) -> None:
        assert self.building is not None
        self.building.steps.append(step)
        if step.needed is not None and not step.needed():
            step.expected = False  # not planned further: nothing it would change is known
            return
        self.open = step
        try:
            step.carry_out()
        except (OSError, O2cbError) as error:
            step.foreseen = error
            raise
        finally:
            self.open = None

    # -- carrying out ----------------------------------------------------------

    def carry_out(self, plan: Plan) -> None:
        """Carry out every part in turn; an all-or-nothing part that fails is undone.

        A dry run shows each step instead, as far as the plan goes.
        """
        for part in plan.parts:
            if self.system.dry_run:
                self._run_part(part, self._show)
            elif part.all_or_nothing:
                with self.journal.all_or_nothing(self.report.problem):
                    self._run_part(part, self._carry_out)
            else:
                self._run_part(part, self._carry_out)

    def _run_part(self, part: Part, action: Callable[[Step], None]) -> None:
        for step in part.steps:
            action(step)
        if part.ending is not None:
            raise part.ending

    def _carry_out(self, step: Step) -> None:
        """Run one step, showing its title and outcome; in a dry run, show its plan."""
        if step.note is not None:
            self.report.line(step.note)
            return
        if step.needed is not None and not step.needed():
            return
        if step.title is not None:
            self.report.line(f"{step.title}: ", end="")
        outer, self.open = self.open, step
        try:
            if step.foreseen is not None:
                raise step.foreseen
            step.carry_out()
        except Exception as error:
            self._fail(step, error)
        finally:
            self.open = outer
        if self.system.dry_run:  # a step of `configure --dry-run`
            self._finish_dry_run(step)
        else:
            self._finish(step, "OK")

    def _show(self, step: Step) -> None:
        """A dry run's view of a planned step: its title, then what it would change."""
        if step.note is not None:
            self.report.line(step.note)
            return
        if not step.expected:
            return
        if step.title is not None:
            self.report.line(f"{step.title}: ", end="")
        if step.foreseen is not None:
            self._fail(step, step.foreseen)
        self._finish_dry_run(step)

    def _finish_dry_run(self, step: Step) -> None:
        self._finish(step, "dry run" if step.planned else "OK")
        for action in step.changes:
            self.report.line(f"  would {action}")

    def _fail(self, step: Step, error: Exception) -> NoReturn:
        self._finish(step, "Failed")
        if isinstance(error, StepError):
            self.report.problem(error.message)
            raise StepFailed(error.message) from None
        raise error

    def _finish(self, step: Step, word: str) -> None:
        if step.title is not None:
            self.report.line(word)


def _nothing() -> None:
    """A note changes nothing: the line is all it does."""
