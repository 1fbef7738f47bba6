"""Host side of the real-kernel test bed: boot Debian's kernel, run scenarios, read results.

One boot runs a list of scenarios (see ``guest.py``) against one
implementation, ``ours`` (the ``o2cb`` CLI) or ``reference`` (Debian's
/etc/init.d/o2cb).  The guest sees the host's root read-only, with /etc as a
writable overlay (cluster.conf and /etc/default/o2cb are written there) and a
fresh directory under /tmp shared read-write for the plan and the results.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import guest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GUEST_SCRIPT = HERE / "guest.py"
INSTALL_SCRIPT = REPO / ".ci" / "install-realkernel"
DLM_DIR = Path("/dlm")
BOOT_TIMEOUT = float(os.environ.get("O2CB_RK_TIMEOUT", "480"))
MARKER = "virtme-ng-init: starting script"
OUR_ENTRY = "o2cb_init.cli:main"  # the console script's target (pyproject)


def in_ci() -> bool:
    """True when the environment says this is CI (CI=true, CI=1, ...)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def kernel_version() -> str | None:
    """The kernel to boot: $O2CB_RK_KERNEL, else what linux-image-amd64 depends on.

    Falls back to the newest /boot/vmlinuz-* whose modules include OCFS2.
    """
    chosen = os.environ.get("O2CB_RK_KERNEL")
    if chosen:
        return chosen
    if shutil.which("apt-cache"):
        proc = subprocess.run(
            ["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True
        )
        for line in proc.stdout.splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "Depends:" and words[1].startswith("linux-image-"):
                return words[1][len("linux-image-") :]
    candidates = sorted(
        path.name[len("vmlinuz-") :]
        for path in Path("/boot").glob("vmlinuz-*")
        if (Path("/lib/modules") / path.name[len("vmlinuz-") :] / "kernel/fs/ocfs2").is_dir()
    )
    return candidates[-1] if candidates else None


def missing_prerequisites() -> list[str]:
    """What the bed needs and cannot find, one reason each; empty when it can run."""
    missing = []
    if not shutil.which("qemu-system-x86_64"):
        missing.append("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    if not vng_path():
        missing.append("vng not found (pip install virtme-ng)")
    version = kernel_version()
    if not version:
        missing.append("no kernel version: linux-image-amd64 unknown to apt and none in /boot")
    else:
        if not Path(f"/boot/vmlinuz-{version}").exists():
            missing.append(f"/boot/vmlinuz-{version} missing (run .ci/install-realkernel)")
        if not (Path("/lib/modules") / version / "modules.dep").exists():
            missing.append(f"/lib/modules/{version} missing (run .ci/install-realkernel)")
    if not Path("/etc/init.d/o2cb").exists() or not shutil.which("mkfs.ocfs2"):
        missing.append("ocfs2-tools not installed (apt-get install ocfs2-tools)")
    if not shutil.which("busybox"):
        missing.append("busybox not found (apt-get install busybox-static)")
    if not DLM_DIR.is_dir():
        try:
            DLM_DIR.mkdir()
        except OSError as error:
            missing.append(f"{DLM_DIR} missing and cannot be created: {error}")
    if os.geteuid() != 0:
        missing.append("not root: the guest runs as the host user and needs root to load modules")
    return missing


def require_bed() -> None:
    """Skip the calling test when the bed cannot run; fail it instead under CI."""
    skip_or_fail("real-kernel bed", missing_prerequisites(), ".ci/install-realkernel")


def skip_or_fail(bed: str, missing: list[str], installer: str) -> None:
    """Skip when ``missing`` names anything; under CI, fail instead."""
    import pytest

    if not missing:
        return
    reason = f"{bed} unavailable: " + "; ".join(missing)
    if in_ci():
        pytest.fail(reason + f" (CI is set: install them with {installer})")
    pytest.skip(reason)


def vng_path() -> str | None:
    """vng from the interpreter's own environment first, then PATH."""
    beside = Path(sys.executable).parent / "vng"
    return str(beside) if beside.exists() else shutil.which("vng")


def our_command() -> list[str]:
    """How the guest runs our CLI: the installed console script, else ``-m``."""
    script = Path(sys.executable).parent / "o2cb.init"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "o2cb_init"]


@dataclass
class ScenarioResult:
    """One scenario's record, with helpers that make assertion messages useful."""

    name: str
    impl: str
    record: dict[str, Any]
    console: str

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.record["steps"]

    def step(self, label: str) -> dict[str, Any]:
        for step in self.steps:
            if step["label"] == label:
                return step
        raise AssertionError(self.explain(f"no step {label!r}"))

    def snap(self, label: str) -> dict[str, Any]:
        if label not in self.record["snapshots"]:
            raise AssertionError(self.explain(f"no snapshot {label!r}"))
        return self.record["snapshots"][label]

    @property
    def notes(self) -> dict[str, Any]:
        return self.record["notes"]

    def transcript(self) -> str:
        lines = []
        for step in self.steps:
            lines.append(f"$ {step['command']}    # [{step['label']}] exit {step['rc']}")
            lines += [f"  {line}" for line in step["stdout"].splitlines()]
            lines += [f"  (stderr) {line}" for line in step["stderr"].splitlines()]
        return "\n".join(lines)

    def explain(self, message: str) -> str:
        parts = [f"[{self.impl}] scenario {self.name}: {message}"]
        if self.record.get("error"):
            parts.append("guest runner error:\n" + self.record["error"])
        for key in ("reset_before", "reset_after"):
            if self.record.get(key):
                parts.append(f"{key}: {self.record[key]}")
        parts.append("--- guest console for this scenario ---\n" + self.console)
        return "\n".join(parts)

    def check(self, condition: Any, message: str) -> None:
        if not condition:
            raise AssertionError(self.explain(message))


@dataclass
class Boot:
    """The outcome of one boot: results JSON, console text, timings."""

    impl: str
    results: dict[str, Any]
    console: str
    returncode: int | None
    seconds: float
    workdir: Path
    problems: list[str] = field(default_factory=list)

    def scenario(self, name: str) -> ScenarioResult:
        record = self.results.get("scenarios", {}).get(name)
        if record is None:
            raise AssertionError(
                f"[{self.impl}] scenario {name} has no results "
                f"({'; '.join(self.problems) or 'runner stopped early'})\n"
                f"--- guest console (tail) ---\n{self.console[-6000:]}"
            )
        return ScenarioResult(name, self.impl, record, console_section(self.console, name))


def console_section(console: str, name: str) -> str:
    opening, closing = f"{guest.BEGIN}{name}\n", f"{guest.END}{name}\n"
    begin = console.rfind(opening)
    if begin < 0:
        return console[-6000:]
    end = console.find(closing, begin)
    return console[begin:] if end < 0 else console[begin : end + len(closing)]


def boot(
    impl: str,
    scenarios: list[str],
    *,
    timeout: float = BOOT_TIMEOUT,
    keep: bool = False,
    fork_ours: bool = True,
    guest_script: Path = GUEST_SCRIPT,
) -> Boot:
    """Boot the kernel once and run ``scenarios`` with implementation ``impl``.

    ``guest_script`` is the runner inside the guest: guest.py, or a module
    that adds scenarios of its own to guest.py's and calls guest.main.
    """
    unknown = [name for name in scenarios if name not in guest.SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios: {unknown}")
    version = kernel_version()
    # The guest cannot write bytecode on its read-only root: compile it here.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "o2cb_init")], check=False)
    workdir = Path(tempfile.mkdtemp(prefix=f"o2cb-rk-{impl}-", dir="/tmp"))
    results_path = workdir / "results.json"
    plan = {
        "impl": impl,
        "scenarios": scenarios,
        "results": str(results_path),
        "commands": {"ours": our_command(), "reference": ["/etc/init.d/o2cb"]},
        "ours_entry": OUR_ENTRY,
        "fork_ours": fork_ours,
    }
    (workdir / "plan.json").write_text(json.dumps(plan, indent=1))
    command = [
        vng_path() or "vng",
        "--run",
        str(version),
        "--disable-kvm",
        "--verbose",
        "--memory",
        "1G",
        "--cpus",
        "1",
        "--overlay-rwdir",
        "/etc",
        "--rwdir",
        str(workdir),
        "--cwd",
        str(REPO),
        "--exec",
        f"{sys.executable} {guest_script} {workdir / 'plan.json'}",
    ]
    started = time.monotonic()
    problems: list[str] = []
    console_path = workdir / "console.txt"
    with open(console_path, "w") as console_file:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=console_file,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            problems.append(f"boot timed out after {timeout:.0f}s")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.monotonic() - started
    console = console_path.read_text(errors="replace")
    shown = console.split(MARKER, 1)[1] if MARKER in console else console
    try:
        results = json.loads(results_path.read_text())
    except (OSError, ValueError) as error:
        problems.append(f"no results from the guest: {error}")
        results = {}
    if results and not results.get("finished"):
        problems.append("the guest runner did not finish")
    result = Boot(impl, results, shown, proc.returncode, seconds, workdir, problems)
    if not (keep or problems or os.environ.get("O2CB_RK_KEEP")):
        shutil.rmtree(workdir, ignore_errors=True)
    return result
