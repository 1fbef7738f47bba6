"""python3 -m benchmarks.realkernel [--rounds N]: ours against the reference on the real kernel.

Boots Debian's kernel once in the qemu bed of the real-kernel tests and
runs, interleaved, ours and /etc/init.d/o2cb: status (offline), start,
status (online), stop, each from the kernel's boot state.  Under software
emulation, with the root shared over 9p, absolute times mean little: only
the ratios ours/reference are printed.  Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.realkernel import harness  # noqa: E402

from .realkernel_guest import VERBS, scenario_names  # noqa: E402

GUEST_SCRIPT = Path(__file__).resolve().parent / "realkernel_guest.py"
# status exits 3 for ours when the cluster is offline (LSB), 0 for the reference.
EXPECTED_RC = {("ours", "status offline"): 3}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.realkernel")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    missing = harness.missing_prerequisites()
    if missing:
        print("real-kernel bed unavailable: " + "; ".join(missing), file=sys.stderr)
        return 1
    names = scenario_names(args.rounds)
    for name in names:  # the guest defines them; the host only checks the names
        harness.guest.SCENARIOS.setdefault(name, lambda ctx: None)
    boot = harness.boot("ours", names, guest_script=GUEST_SCRIPT,
                        timeout=harness.BOOT_TIMEOUT + 120 * args.rounds)
    seconds: dict[tuple[str, str], list[float]] = {}
    problems = list(boot.problems)
    for name in names:
        impl = name.split(":")[1]
        result = boot.scenario(name)
        if result.record.get("error"):
            problems.append(f"{name}: {result.record['error'].strip().splitlines()[-1]}")
            continue
        for label, _verb in VERBS:
            step = result.step(label)
            expected = EXPECTED_RC.get((impl, label), 0)
            if step["rc"] != expected:
                problems.append(f"{name} {label}: exit {step['rc']}, expected {expected}: "
                                f"{step['stderr'].strip()}")
            seconds.setdefault((impl, label), []).append(step["seconds"])
    print(f"real kernel {boot.results.get('uname', '?')} under qemu, {args.rounds} rounds "
          f"interleaved; ratios ours/reference of the medians (times under emulation)")
    for label, _verb in VERBS:
        ours, reference = seconds.get(("ours", label)), seconds.get(("reference", label))
        if ours and reference and statistics.median(reference) > 0:
            ratio = statistics.median(ours) / statistics.median(reference)
            print(f"  {label:<16} {ratio:5.2f}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
