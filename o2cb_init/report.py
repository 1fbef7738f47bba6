"""Output in the reference script's style: lines on stdout, problems on stderr.

A step prints its title, does its work, then ``OK``; a failing step prints
``Failed`` and its reason on stderr (plan.py decides which).  Work that is
already done prints nothing.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO


class Reporter:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None,
                 quiet: bool = False) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet

    def line(self, text: str, end: str = "\n") -> None:
        if not self.quiet:
            print(text, end=end, file=self.out, flush=True)

    def problem(self, text: str) -> None:
        print(text, file=self.err, flush=True)
