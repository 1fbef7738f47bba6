"""Guest side of the real-kernel benchmark: ours and the reference, interleaved.

Booted by ``benchmarks/realkernel.py`` through the real-kernel test bed
(tests/realkernel/harness.py) instead of guest.py: it adds one scenario per
implementation and round, ``bench:IMPL:N``, and hands over to guest.py's
runner, which brings the kernel back to its boot state before each of them.
Each scenario runs, with the installed command itself (no fork shortcut):
status with the cluster offline, start, status online, stop.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "realkernel"))

import guest  # noqa: E402

VERBS = (
    ("status offline", ("status",)),
    ("start", ("start",)),
    ("status online", ("status",)),
    ("stop", ("stop",)),
)
IMPLS = ("ours", "reference")


def scenario_names(rounds: int) -> list[str]:
    return [f"bench:{impl}:{number}" for number in range(1, rounds + 1) for impl in IMPLS]


def timed(impl: str) -> Callable[[guest.Context], None]:
    def run(ctx: guest.Context) -> None:
        for label, verb in VERBS:
            ctx.o2cb(*verb, label=label, impl=impl, exec_=True)

    return run


def register(names: list[str]) -> None:
    for name in names:
        if name.startswith("bench:"):
            guest.SCENARIOS[name] = timed(name.split(":")[1])


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        register(json.load(handle)["scenarios"])
    sys.exit(guest.main(sys.argv))
