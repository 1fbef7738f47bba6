"""Step-by-step output in the reference script's style.

A step prints its title, does its work, then ``OK``; a failing step prints
``Failed`` and its reason on stderr.  Work that is already done prints
nothing: callers only open a step when something has to change.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import TextIO

from .errors import StepError, StepFailed
from .system import System


class Outcome(Enum):
    """What a step did: the reference script's 0 / 1 / 2."""

    DONE = "done"
    FAILED = "failed"
    ALREADY = "already"


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
        if not self.quiet:
            print(text, file=self.out, flush=True)

    def problem(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        """Run the body as one reported step.

        Raise StepError inside the body to fail with a reason; it becomes
        StepFailed (exit 1) once reported.
        """
        if not self.quiet:
            print(f"{title}: ", end="", file=self.out, flush=True)
        try:
            yield
        except StepError as error:
            self._finish("Failed")
            self.problem(error.message)
            raise StepFailed(error.message) from None
        except Exception:
            self._finish("Failed")
            raise
        planned = self.system.take_planned()
        self._finish("dry run" if planned else "OK")
        for action in planned:
            self.line(f"  would {action}")

    def _finish(self, word: str) -> None:
        if not self.quiet:
            print(word, file=self.out, flush=True)
