"""The benchmark harness itself (benchmarks/): one round of one case, run as users run it.

Proves that it times both implementations only after they ended in the same
state, and that it refuses to time them when they do not: a copy of the
reference script that writes another idle timeout makes the states differ.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REFERENCE = Path("/etc/init.d/o2cb")

pytestmark = pytest.mark.bench


def missing() -> list[str]:
    reasons = []
    if os.geteuid() != 0:
        reasons.append("not root (private namespaces and chroot)")
    if not shutil.which("unshare"):
        reasons.append("util-linux unshare not found")
    if not (shutil.which("cc") or shutil.which("gcc")):
        reasons.append("no C compiler (apt-get install gcc)")
    if not REFERENCE.is_file():
        reasons.append("ocfs2-tools not installed (no /etc/init.d/o2cb)")
    return reasons


@pytest.fixture(autouse=True)
def bench_possible() -> None:
    """Skip where the benchmark cannot run; under CI (CI=true) fail instead."""
    reasons = missing()
    if not reasons:
        return
    message = "benchmark cannot run here: " + "; ".join(reasons)
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(message + " (CI is set: .ci/install-realkernel installs them)")
    pytest.skip(message)


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("O2CB_BENCH_NAMESPACE", None)
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--rounds", "1", "--no-count", *args],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300, check=False,
    )


def row(report: str, case: str, impl: str) -> list[str]:
    """The figures of one implementation's row for a case in the printed table."""
    lines = report.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(case):
            ours = line[len(case):].split()
            if impl == "ours":
                return ours
            return lines[index + 1].split()
    raise AssertionError(f"no row for {case!r} in:\n{report}")


def test_times_both_when_they_end_alike() -> None:
    result = bench("--case", "start+stop")
    assert result.returncode == 0, result.stdout + result.stderr
    ours = row(result.stdout, "start+stop", "ours")
    reference = row(result.stdout, "start+stop", "reference")
    assert ours[0] == "ours" and reference[0] == "reference"
    ratio, above = float(ours[-2]), ours[-1]
    assert float(ours[1]) > 0 and float(reference[1]) > 0
    assert ratio == pytest.approx(float(ours[1]) / float(reference[1]), rel=0.05, abs=0.02)
    lines = result.stdout.splitlines()
    floor = lines[lines.index(next(x for x in lines if x.startswith("start+stop"))) + 2].split()
    assert floor[0] == "floor" and float(floor[1]) > 0
    # ours less two floors (start, stop), to the millisecond of the printed medians
    assert abs(int(above) - (float(ours[1]) - 2 * float(floor[1]))) <= 2
    assert re.search(r"^load average: [\d.]+ [\d.]+ [\d.]+", result.stdout, re.M)
    assert "NOT TIMED" not in result.stdout


def test_refuses_to_time_when_the_states_differ(tmp_path: Path) -> None:
    altered = tmp_path / "o2cb"
    text = REFERENCE.read_text()
    line = 'echo "$O2CB_IDLE_TIMEOUT_MS" > "$O2CB_IDLE_TIMEOUT_MS_FILE"'
    assert line in text
    altered.write_text(text.replace(line, 'echo 12345 > "$O2CB_IDLE_TIMEOUT_MS_FILE"'))
    altered.chmod(0o755)
    result = bench("--case", "start+stop", "--reference", str(altered))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "start+stop" in result.stdout and "NOT TIMED" in result.stdout
    assert re.search(
        r"state after verb 1 differs: configfs\[cluster/ocfs2/idle_timeout_ms\]: "
        r"ours='30000' reference='12345'",
        result.stdout,
    ), result.stdout
