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
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import guest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GUEST_SCRIPT = HERE / "guest.py"
INSTALL_SCRIPT = REPO / ".ci" / "install-realkernel"
DLM_DIR = Path("/dlm")
# A boot takes 2-5 minutes on an idle 2-core machine, three times that when
# other guests share the cores.
BOOT_TIMEOUT = float(os.environ.get("O2CB_RK_TIMEOUT", "1200"))
MARKER = "virtme-ng-init: starting script"
OUR_ENTRY = "o2cb_init.entry:main"  # the console script's target (pyproject)


def in_ci() -> bool:
    """True when the environment says this is CI (CI=true, CI=1, ...)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# The Debian suites whose kernels the bed boots, oldest first, and the one
# this machine runs (its kernel comes from the machine's own apt sources).
SUITES = ("bullseye", "bookworm", "trixie")
HOST_SUITE = "bookworm"


def cache_dir() -> Path:
    """Where .ci/install-realkernel keeps the kernels and their suite list."""
    base = os.environ.get("O2CB_CACHE_DIR")
    if base:
        return Path(base) / "kernels"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "o2cb" / "kernels"


def installed_suites() -> dict[str, str]:
    """{suite: version} as .ci/install-realkernel last resolved them."""
    try:
        text = (cache_dir() / "suites").read_text()
    except OSError:
        return {}
    pairs = (line.split() for line in text.splitlines())
    return {words[0]: words[1] for words in pairs if len(words) == 2}


def host_kernel_version() -> str | None:
    """What this machine's linux-image-amd64 depends on, e.g. 6.1.0-56-amd64."""
    if not shutil.which("apt-cache"):
        return None
    proc = subprocess.run(
        ["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True
    )
    for line in proc.stdout.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "Depends:" and words[1].startswith("linux-image-"):
            return words[1][len("linux-image-") :]
    return None


@dataclass(frozen=True)
class Kernel:
    """A kernel to boot: asked for as a suite name or a version.

    ``version`` is None when a suite could not be resolved (its kernel was
    never installed); the bed then reports it missing.
    """

    asked: str
    version: str | None
    suite: str | None = None

    def __str__(self) -> str:
        return self.version or self.asked

    @property
    def label(self) -> str:
        """For messages: ``6.12.117+deb13-amd64 (trixie)``."""
        return f"{self} ({self.suite})" if self.suite and self.version else str(self)


def resolve_kernel(word: str) -> Kernel:
    """A suite name (bullseye, ...) or a kernel version, as the bed will boot it."""
    suites = installed_suites()
    if word in suites:
        return Kernel(word, suites[word], word)
    if word == HOST_SUITE:
        return Kernel(word, host_kernel_version(), word)
    if word in SUITES:
        return Kernel(word, None, word)
    suite = next((name for name, version in suites.items() if version == word), None)
    return Kernel(word, word, suite)


def kernels() -> list[Kernel]:
    """The kernels the suite runs on.

    $O2CB_RK_KERNELS (suites or versions, separated by spaces or commas),
    else $O2CB_RK_KERNEL (one), else the three suites.
    """
    chosen = os.environ.get("O2CB_RK_KERNELS") or os.environ.get("O2CB_RK_KERNEL")
    words = chosen.replace(",", " ").split() if chosen else list(SUITES)
    return [resolve_kernel(word) for word in dict.fromkeys(words)]


def kernel_version() -> str | None:
    """The one kernel `make demo` boots: $O2CB_RK_KERNEL, else this machine's suite's.

    Falls back to the newest /boot/vmlinuz-* whose modules include OCFS2.
    """
    chosen = os.environ.get("O2CB_RK_KERNEL")
    if chosen:
        return resolve_kernel(chosen).version
    version = resolve_kernel(HOST_SUITE).version
    if version:
        return version
    candidates = sorted(
        path.name[len("vmlinuz-") :]
        for path in Path("/boot").glob("vmlinuz-*")
        if (Path("/lib/modules") / path.name[len("vmlinuz-") :] / "kernel/fs/ocfs2").is_dir()
    )
    return candidates[-1] if candidates else None


def missing_kernel(kernel: Kernel) -> list[str]:
    """Why ``kernel`` cannot boot here, one reason each; empty when it can."""
    if not kernel.version:
        return [
            f"no {kernel.asked} kernel installed (run .ci/install-realkernel; "
            f"{cache_dir() / 'suites'} does not list it)"
        ]
    missing = []
    if not Path(f"/boot/vmlinuz-{kernel.version}").exists():
        missing.append(f"/boot/vmlinuz-{kernel.version} missing (run .ci/install-realkernel)")
    if not (Path("/lib/modules") / kernel.version / "modules.dep").exists():
        missing.append(f"/lib/modules/{kernel.version} missing (run .ci/install-realkernel)")
    return missing


def missing_prerequisites(kernel: Kernel | None = None) -> list[str]:
    """What the bed needs and cannot find, one reason each; empty when it can run.

    Without ``kernel``, the kernel checked is the demo's (kernel_version()).
    """
    missing = []
    if not shutil.which("qemu-system-x86_64"):
        missing.append("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    if not vng_path():
        missing.append("vng not found (pip install virtme-ng)")
    if kernel is None:
        version = kernel_version()
        if version:
            missing += missing_kernel(Kernel(version, version))
        else:
            missing.append("no kernel version: linux-image-amd64 unknown to apt and none in /boot")
    else:
        missing += missing_kernel(kernel)
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


def require_bed(kernel: Kernel | None = None) -> None:
    """Skip the calling test when the bed cannot run; fail it instead under CI."""
    where = f" for kernel {kernel.label}" if kernel else ""
    skip_or_fail("real-kernel bed", missing_prerequisites(kernel), ".ci/install-realkernel", where)


def skip_or_fail(bed: str, missing: list[str], installer: str, where: str = "") -> None:
    """Skip when ``missing`` names anything; under CI, fail instead."""
    import pytest

    if not missing:
        return
    reason = f"{bed} unavailable{where}: " + "; ".join(missing)
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
    kernel: str = "?"

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
        parts = [f"[kernel {self.kernel}, {self.impl}] scenario {self.name}: {message}"]
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
    kernel: str = "?"
    cpu_seconds: float = 0.0

    def save(self, folder: Path, name: str) -> None:
        """Keep the results and console as FOLDER/NAME.json and NAME-console.txt."""
        folder.mkdir(parents=True, exist_ok=True)
        data = dict(
            self.results,
            wall_seconds=round(self.seconds, 1),
            cpu_seconds=round(self.cpu_seconds, 1),
            problems=self.problems,
        )
        (folder / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True))
        (folder / f"{name}-console.txt").write_text(self.console)

    @property
    def tag(self) -> str:
        """``[kernel 6.1.0-56-amd64, ours]``: how messages name this boot."""
        return f"[kernel {self.kernel}, {self.impl}]"

    def scenario(self, name: str) -> ScenarioResult:
        record = self.results.get("scenarios", {}).get(name)
        if record is None:
            raise AssertionError(
                f"{self.tag} scenario {name} has no results "
                f"({'; '.join(self.problems) or 'runner stopped early'})\n"
                f"--- guest console (tail) ---\n{self.console[-6000:]}"
            )
        section = console_section(self.console, name)
        return ScenarioResult(name, self.impl, record, section, self.kernel)


def console_section(console: str, name: str) -> str:
    opening, closing = f"{guest.BEGIN}{name}\n", f"{guest.END}{name}\n"
    begin = console.rfind(opening)
    if begin < 0:
        return console[-6000:]
    end = console.find(closing, begin)
    return console[begin:] if end < 0 else console[begin : end + len(closing)]


def wait_with_usage(proc: subprocess.Popen[bytes], deadline: float) -> float | None:
    """Wait for vng until ``deadline``; the CPU seconds it and qemu used, None on timeout.

    The CPU time is what a boot costs on an idle machine: on a busy one the
    wall time says more about the other processes than about the bed.
    """
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        time.sleep(0.2)
    return None


def vng_command(version: str, workdir: Path, exec_line: str, *extra: str) -> list[str]:
    """vng booting ``version`` under TCG with the host's root, /etc as an overlay,
    ``workdir`` shared read-write, and ``extra`` options before ``--exec``."""
    return [
        vng_path() or "vng",
        "--run",
        version,
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
        *extra,
        "--exec",
        exec_line,
    ]


def boot(
    impl: str,
    scenarios: list[str],
    *,
    timeout: float = BOOT_TIMEOUT,
    keep: bool = False,
    fork_ours: bool = True,
    guest_script: Path = GUEST_SCRIPT,
    kernel: Kernel | str | None = None,
    prepare: Callable[[Path], list[str]] | None = None,
) -> Boot:
    """Boot a kernel once and run ``scenarios`` with implementation ``impl``.

    ``kernel`` is a Kernel from kernels(), a version, or None for the
    demo's kernel (kernel_version()).  ``guest_script`` is the runner inside
    the guest: guest.py, or a module that adds scenarios of its own to
    guest.py's and calls guest.main.  ``prepare``, given the boot's work
    directory, makes what the guest needs there (disk images) and returns
    more vng options (``--qemu-opts=...``).
    """
    unknown = [name for name in scenarios if name not in guest.SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios: {unknown}")
    version = str(kernel) if kernel is not None else kernel_version()
    # The guest cannot write bytecode on its read-only root: compile it here.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "o2cb_init")], check=False)
    workdir = Path(tempfile.mkdtemp(prefix=f"o2cb-rk-{version}-{impl}-", dir="/tmp"))
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
    extra = prepare(workdir) if prepare else []
    command = vng_command(
        str(version), workdir, f"{sys.executable} {guest_script} {workdir / 'plan.json'}", *extra
    )
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
        cpu_seconds = wait_with_usage(proc, started + timeout)
        if cpu_seconds is None:
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
    if results and results.get("uname") != version:
        problems.append(f"the guest runs kernel {results.get('uname')}, not {version}")
    result = Boot(impl, results, shown, proc.returncode, seconds, workdir, problems, str(version))
    result.cpu_seconds = cpu_seconds or 0.0
    if not (keep or problems or os.environ.get("O2CB_RK_KEEP")):
        shutil.rmtree(workdir, ignore_errors=True)
    return result


# -- boots shared by the whole session, run in the background ----------------


@dataclass(frozen=True)
class Plan:
    """A boot that tests need on every kernel: one implementation, its scenarios.

    ``fixture`` names the pytest fixture that returns the boot; the session
    starts the boots of every collected test's fixtures ahead of time.
    """

    name: str
    impl: str
    scenarios: tuple[str, ...]
    fixture: str
    guest_script: Path = GUEST_SCRIPT
    prepare: Callable[[Path], list[str]] | None = None  # see boot()


PLANS: dict[str, Plan] = {}


def plan(
    name: str, impl: str, scenarios: list[str], *, fixture: str, guest_script: Path = GUEST_SCRIPT,
    prepare: Callable[[Path], list[str]] | None = None,
) -> Plan:
    """Declare a boot (at import time of the test module that reads it)."""
    declared = Plan(name, impl, tuple(scenarios), fixture, guest_script, prepare)
    if PLANS.get(name, declared) != declared:
        raise ValueError(f"boot plan {name!r} declared twice, differently")
    PLANS[name] = declared
    return declared


def workers() -> int:
    """How many guests boot at once: $O2CB_RK_WORKERS, else one per core."""
    wanted = os.environ.get("O2CB_RK_WORKERS")
    return max(1, int(wanted)) if wanted and wanted.isdigit() else max(1, os.cpu_count() or 1)


class BootQueue:
    """Boots run ``workers()`` at a time, in the order asked for, each at most once.

    A boot costs 15-40 s of qemu start-up under software emulation and then
    keeps one core busy: queueing every kernel's boots up front keeps both
    cores busy until the last one, while the tests read finished boots.
    """

    def __init__(self, size: int | None = None) -> None:
        self.pool = ThreadPoolExecutor(max_workers=size or workers())
        self.futures: dict[tuple[str, str], Future[Boot]] = {}
        self.lock = threading.Lock()
        self.ahead: list[tuple[Kernel, Plan]] = []

    def plan_ahead(self, wanted: list[tuple[Kernel, Plan]]) -> None:
        """Boots to queue, in this order, when the first boot is asked for.

        Kernels that cannot boot here are left out: their tests skip or fail
        on their own.
        """
        self.ahead = [(kernel, plan) for kernel, plan in wanted if not missing_kernel(kernel)]

    def submit(self, kernel: Kernel, plan: Plan) -> Future[Boot]:
        with self.lock:
            key = (str(kernel), plan.name)
            if key not in self.futures:
                self.futures[key] = self.pool.submit(
                    boot,
                    plan.impl,
                    list(plan.scenarios),
                    kernel=kernel,
                    guest_script=plan.guest_script,
                    prepare=plan.prepare,
                )
            return self.futures[key]

    def get(self, kernel: Kernel, plan: Plan) -> Boot:
        ahead, self.ahead = self.ahead, []
        for wanted in ahead:
            self.submit(*wanted)
        result = self.submit(kernel, plan).result()
        keep = os.environ.get("O2CB_RK_RESULTS")
        if keep:
            result.save(Path(keep) / str(kernel), plan.name)
        return result

    def shutdown(self) -> None:
        for future in self.futures.values():
            future.cancel()
        self.pool.shutdown(wait=True)
