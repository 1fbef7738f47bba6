"""Step-by-step output in the reference script's style.

A step prints its title, does its work, then ``OK``; a failing step prints
``Failed`` and its reason on stderr.  Work that is already done prints
nothing: callers only make a step when something has to change.

A step is written as a decorated function, so that while a verb is planned
(plan.py) its code can be entered in the plan and carried out later:

    @report.step('Loading filesystem "configfs"')
    def _() -> None:
        kernel.modprobe("configfs")

Outside planning (`configure`, an undo) the step runs at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import Enum
from typing import NoReturn, TextIO

from .errors import StepError, StepFailed
from .plan import Part, Plan, Step
from .system import System


class Outcome(Enum):
    """What a step did: the reference script's 0 / 1 / 2."""

    DONE = "done"
    FAILED = "failed"
    ALREADY = "already"


Body = Callable[[], None]


class Reporter:
    def __init__(
        self,
        system: System,
        out: TextIO | None = None,
        err: TextIO | None = None,
        quiet: bool = False,
    ) -> None:
        self.system = system
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet

    def line(self, text: str) -> None:
        """Print a line; while a verb is planned, at this point of the plan."""
        system = self.system
        if system.building is None:
            self._print(text)
        elif system.open_step is None:
            system.building.steps.append(Step(None, _nothing, note=text))
        # else: a step's own lines are printed when it is carried out

    def problem(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def step(self, title: str | None,
             needed: Callable[[], bool] | None = None) -> Callable[[Body], Body]:
        """Make the decorated function one reported step (``title`` None: a quiet one).

        Raise StepError inside it to fail with a reason; it becomes
        StepFailed (exit 1) once reported.  ``needed``: asked when the step
        is carried out, which skips it when False.
        """

        def make(body: Body) -> Body:
            if self.system.open_step is not None:
                body()  # part of the step whose code runs
            elif self.system.building is not None:
                self.system.plan_step(title, body, needed)
            else:
                self.carry_out(Step(title, body, needed=needed))
            return body

        return make

    # -- plans ---------------------------------------------------------------

    def carry_out(self, step: Step) -> None:
        """Run one step, showing its title and outcome; in a dry run, show its plan."""
        if step.note is not None:
            self._print(step.note)
            return
        if step.needed is not None and not step.needed():
            return
        if step.title is not None:
            self._print(f"{step.title}: ", end="")
        outer, self.system.open_step = self.system.open_step, step
        try:
            if step.foreseen is not None:
                raise step.foreseen
            step.carry_out()
        except Exception as error:
            self._fail(step, error)
        finally:
            self.system.open_step = outer
        if self.system.dry_run:  # a step of `configure --dry-run`
            self._finish_dry_run(step)
        else:
            self._finish(step, "OK")

    def carry_out_plan(self, plan: Plan) -> None:
        """Carry out every part in turn; an all-or-nothing part that fails is undone.

        A dry run shows each step instead, as far as the plan goes.
        """
        for part in plan.parts:
            if self.system.dry_run:
                self._run_part(part, self.show)
            elif part.all_or_nothing:
                with self.system.journal.all_or_nothing(self.problem):
                    self._run_part(part, self.carry_out)
            else:
                self._run_part(part, self.carry_out)

    def _run_part(self, part: Part, action: Callable[[Step], None]) -> None:
        for step in part.steps:
            action(step)
        if part.ending is not None:
            raise part.ending

    def show(self, step: Step) -> None:
        """A dry run's view of a planned step: its title, then what it would change."""
        if step.note is not None:
            self._print(step.note)
            return
        if not step.expected:
            return
        if step.title is not None:
            self._print(f"{step.title}: ", end="")
        if step.foreseen is not None:
            self._fail(step, step.foreseen)
        self._finish_dry_run(step)

    def _finish_dry_run(self, step: Step) -> None:
        self._finish(step, "dry run" if step.changes else "OK")
        for action in step.changes:
            self._print(f"  would {action}")

    def _fail(self, step: Step, error: Exception) -> NoReturn:
        self._finish(step, "Failed")
        if isinstance(error, StepError):
            self.problem(error.message)
            raise StepFailed(error.message) from None
        raise error

    def _finish(self, step: Step, word: str) -> None:
        if step.title is not None:
            self._print(word)

    def _print(self, text: str, end: str = "\n") -> None:
        if not self.quiet:
            print(text, end=end, file=self.out, flush=True)


def _nothing() -> None:
    """A note changes nothing: the line is all it does."""
