"""Time ours against the reference script on the same fake kernel, case by case.

Each round runs ours and the reference one after the other (interleaved),
each from the same freshly built starting state, and compares the states
they leave (and, for status, what they print) before any time counts.  A
separate, untimed run per implementation counts the processes it creates:
it runs in a new PID namespace, where the kernel numbers every new process
(fork or thread) from 1, so the last number used is the count.
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fakeroot import CLUSTER, FakeRoot

OURS, REFERENCE = "ours", "reference"
# What any click-based command pays before a line of its own runs: the same
# interpreter as ours importing click and configobj.  Timed in every round.
FLOOR = "floor"
FLOOR_CODE = "import click, configobj"
# What the same interpreter pays for the node cases' own changes and nothing
# else: the floor's imports, then the mkdir and three attribute writes of
# each node (verb "up") or their rmdirs (verb "down"), as plain os calls.
# Its growth from 2 to 255 nodes is the least a Python implementation's can be.
SYSCALLS = "syscalls"
SYSCALLS_CODE = f"""{FLOOR_CODE}
import os, sys
verb, count = sys.argv[1], int(sys.argv[2])
cluster = os.environ["O2CB_BENCH_CONFIGFS"] + "/cluster/{CLUSTER}"
nodes = [f"{{cluster}}/node/n{{i}}" for i in range(count)]
flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
if verb == "up":
    os.mkdir(cluster)
    for number, node in enumerate(nodes):
        os.mkdir(node)
        for name, value in (("ipv4_address", "10.0.0.1"), ("ipv4_port", "7777"),
                            ("num", str(number))):
            fd = os.open(f"{{node}}/{{name}}", flags, 0o666)
            os.write(fd, f"{{value}}\\n".encode())
            os.close(fd)
else:
    for node in nodes:
        os.rmdir(node)
    os.rmdir(cluster)
"""
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Answers to the reference's configure questions: enable, keep the rest.
REFERENCE_CONFIGURE_ANSWERS = "y\n\n\n\n\n\n\n"


@dataclass(frozen=True)
class Case:
    name: str
    verbs: tuple[tuple[str, ...], ...]  # run one after the other, timed together
    setup: tuple[str, ...] = ()  # verbs that bring about the starting state
    nodes: int = 2
    layout: str = "default"  # where the configuration lives: etc/default or etc/sysconfig
    enabled: bool = True
    compare_output: bool = False
    reference_verbs: tuple[tuple[str, ...], ...] | None = None
    reference_input: str = ""
    syscalls: bool = False  # time the node changes alone too (SYSCALLS)


CASES = [
    Case("status offline", (("status",),), compare_output=True),
    Case("status online", (("status",),), setup=("start",), compare_output=True),
    Case("start+stop", (("start",), ("stop",))),
    *(
        Case(f"online+offline {n} nodes", (("online", CLUSTER), ("offline", CLUSTER)),
             setup=("load",), nodes=n, syscalls=True)
        for n in (2, 16, 64, 255)
    ),
    Case(
        "configure -y",
        (("configure", "-y", "--enable"),),
        layout="sysconfig",
        enabled=False,
        reference_verbs=(("configure",),),
        reference_input=REFERENCE_CONFIGURE_ANSWERS,
    ),
]


# -- the deliberate differences (README, "Differences from the reference") ----
# Each entry: what the reference does that ours does not, and how a state or
# an output is normalised for it before the comparison.

LEFTOVER_MODULES = ("ocfs2_nodemanager", "configfs")  # "Full unload"


def full_unload(ref: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """The reference's state with its documented leftovers removed, where ours has none."""
    if any(name in ours["modules"] for name in LEFTOVER_MODULES):
        return ref
    trimmed = dict(ref)
    trimmed["modules"] = {
        name: count for name, count in ref["modules"].items() if name not in LEFTOVER_MODULES
    }
    trimmed["mounts"] = [row for row in ref["mounts"] if row[2] != "configfs"]
    trimmed["filesystems"] = [name for name in ref["filesystems"] if name != "configfs"]
    # The node manager's top directory stays with it; a cluster left behind still shows.
    trimmed["configfs"] = {path: v for path, v in ref["configfs"].items() if path != "cluster/"}
    trimmed["sys/fs"] = {k: v for k, v in ref["sys/fs"].items() if not k.startswith("o2cb")}
    return trimmed


def normalise_output(text: str) -> str:
    """Status output for the comparison: both print the same lines, so only
    trailing spaces are dropped."""
    return "\n".join(line.rstrip() for line in text.splitlines())


def normalise_rc(rc: int, impl: str, case: Case, online: bool) -> int:
    """"LSB exit codes": ours' status exits 3 when the cluster is offline, the reference 0."""
    if impl == OURS and case.verbs == (("status",),) and not online and rc == 3:
        return 0
    return rc


def differences(left: dict[str, Any], right: dict[str, Any]) -> list[str]:
    lines = []
    for key in sorted(set(left) | set(right)):
        a, b = left.get(key), right.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for item in sorted(set(a) | set(b)):
                if a.get(item, "<absent>") != b.get(item, "<absent>"):
                    lines.append(
                        f"{key}[{item}]: ours={a.get(item, '<absent>')!r} "
                        f"reference={b.get(item, '<absent>')!r}"
                    )
        else:
            lines.append(f"{key}: ours={a!r} reference={b!r}")
    return lines


# -- running -------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    max_rss_kib: int
    returncodes: list[int]
    stdout: str
    stderr: str


@dataclass
class Implementation:
    """How to run one implementation: its command, environment and root directory."""

    name: str
    command: list[str]
    env: dict[str, str]
    chroot: str | None
    bench_dir: str  # .bench as this implementation sees it
    host_bench_dir: str  # .bench as the benchmark sees it

    def argv(self, verb: tuple[str, ...]) -> list[str]:
        return [*self.command, *verb]


def implementations(fake: FakeRoot, ours_command: list[str]) -> dict[str, Implementation]:
    root = str(fake.root)
    ours_env = {
        "PATH": f"{root}/.bench/bin:{HOST_PATH}",
        "LD_PRELOAD": f"{root}/.bench/lib/configfs.so",
        "O2CB_BENCH_CONFIGFS": f"{root}/sys/kernel/config",
        "LC_ALL": "C",
        "HOME": "/root",
    }
    reference_env = {
        "PATH": f"/.bench/bin:{HOST_PATH}",
        "LD_PRELOAD": "/.bench/lib/configfs.so",
        "O2CB_BENCH_CONFIGFS": "/sys/kernel/config",
        "LC_ALL": "C",
        "HOME": "/root",
        # Debian's LSB hook would hand a SysV script to systemctl otherwise.
        "SYSTEMCTL_SKIP_REDIRECT": "1",
    }
    return {
        OURS: Implementation(OURS, [*ours_command, "--root", root], ours_env, None,
                             f"{root}/.bench", f"{root}/.bench"),
        REFERENCE: Implementation(REFERENCE, ["/etc/init.d/o2cb"], reference_env, root,
                                  "/.bench", f"{root}/.bench"),
    }


def spawn(impl: Implementation, argv: list[str], stdin_text: str, scratch: Path) -> tuple:
    """Run one command through the spawner: wall time, CPU, peak RSS, status, output."""
    stdin_path, out_path, err_path = (scratch / n for n in ("stdin", "stdout", "stderr"))
    stdin_path.write_text(stdin_text)
    fds = [
        os.open(stdin_path, os.O_RDONLY),
        os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    result = Path(impl.host_bench_dir, "result")
    result.unlink(missing_ok=True)
    spawner = [
        f"{impl.host_bench_dir}/bin/spawn", f"{impl.bench_dir}/result", impl.chroot or "-", *argv
    ]
    pid = os.fork()
    if pid == 0:  # child
        try:
            for number, fd in enumerate(fds):
                os.dup2(fd, number)
            env = dict(impl.env)
            env["SPAWN_LD_PRELOAD"] = env.pop("LD_PRELOAD")
            os.execve(spawner[0], spawner, env)
        finally:
            os._exit(127)
    _, status, _usage = os.wait4(pid, 0)
    for fd in fds:
        os.close(fd)
    try:
        wall_ns, cpu_us, rss_kib, rc = (int(word) for word in result.read_text().split())
    except (OSError, ValueError):
        raise RuntimeError(
            f"{impl.name}: the spawner failed (status {status}): {err_path.read_text()}"
        ) from None
    return (
        wall_ns / 1e9,
        cpu_us / 1e6,
        rss_kib,
        rc,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
    )


def run_verbs(impl: Implementation, verbs: tuple[tuple[str, ...], ...], stdin_text: str,
              scratch: Path, after_each: Callable[[], None] | None = None) -> Run:
    """Run the verbs one after the other; ``after_each`` runs untimed after each of them."""
    total = cpu = 0.0
    rss = 0
    codes, outs, errs = [], [], []
    for verb in verbs:
        seconds, cpu_seconds, max_rss, rc, out, err = spawn(
            impl, impl.argv(verb), stdin_text, scratch
        )
        total += seconds
        cpu += cpu_seconds
        rss = max(rss, max_rss)
        codes.append(rc)
        outs.append(out)
        errs.append(err)
        if after_each:
            after_each()
    return Run(total, cpu, rss, codes, "".join(outs), "".join(errs))


# In a new PID namespace pids are handed out one after the other from 1: the
# pid of a job started before the command and of one started after it tell
# how many processes the command created in between.
COUNT_SCRIPT = (
    ': & a=$!; wait; "$@"; rc=$?; : & b=$!; wait; echo $((b - a - 1)) > "$C"; exit $rc'
)


def count_processes(impl: Implementation, verbs: tuple[tuple[str, ...], ...],
                    stdin_text: str, scratch: Path, fake: FakeRoot) -> int:
    """Processes created by the verbs (each command itself included), in a PID namespace."""
    total = 0
    for verb in verbs:
        counted = Implementation(
            impl.name,
            [],
            dict(impl.env, C=f"{impl.bench_dir}/count"),
            impl.chroot,
            impl.bench_dir,
            impl.host_bench_dir,
        )
        argv = [
            "/usr/bin/unshare", "--pid", "--fork",
            "/bin/sh", "-c", COUNT_SCRIPT, "sh", *impl.argv(verb),
        ]
        spawn(counted, argv, stdin_text, scratch)
        total += int((fake.bench / "count").read_text().strip())
    return total


@dataclass
class CaseResult:
    case: Case
    runs: dict[str, list[Run]] = field(default_factory=dict)
    processes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class Bench:
    def __init__(self, fake: FakeRoot, impls: dict[str, Implementation], scratch: Path,
                 floor: Implementation | None = None) -> None:
        self.fake = fake
        self.impls = impls
        self.scratch = scratch
        self.floor = floor

    def prepare(self, case: Case) -> None:
        self.fake.reset(case.nodes, case.layout, case.enabled)
        setter = self.impls.get(REFERENCE) or self.impls[OURS]
        for verb in case.setup:
            run = run_verbs(setter, ((verb,),), "", self.scratch)
            if run.returncodes != [0]:
                raise RuntimeError(
                    f"{case.name}: set-up `{verb}` by {setter.name} exited {run.returncodes}: "
                    f"{run.stderr.strip()}"
                )

    def once(self, case: Case, impl: Implementation) -> tuple[Run, list[dict[str, Any]]]:
        """One timed run from the case's starting state; the state after each verb."""
        self.prepare(case)
        verbs, stdin_text = case.verbs, ""
        if impl.name == REFERENCE and case.reference_verbs:
            verbs, stdin_text = case.reference_verbs, case.reference_input
        states: list[dict[str, Any]] = []
        run = run_verbs(impl, verbs, stdin_text, self.scratch,
                        after_each=lambda: states.append(self.fake.snapshot()))
        self.fake.stop_fake_daemons()
        return run, states

    def syscalls(self, case: Case) -> Run:
        """The node changes of the case alone, from its starting state."""
        assert self.floor is not None
        self.prepare(case)
        impl = Implementation(SYSCALLS, [*self.floor.command[:-1], SYSCALLS_CODE],
                              self.floor.env, None, self.floor.bench_dir,
                              self.floor.host_bench_dir)
        count = str(case.nodes)
        run = run_verbs(impl, (("up", count), ("down", count)), "", self.scratch)
        if run.returncodes != [0, 0]:
            raise RuntimeError(f"{case.name}: the syscalls floor failed: {run.stderr.strip()}")
        return run

    def check(self, case: Case,
              results: dict[str, tuple[Run, list[dict[str, Any]]]]) -> list[str]:
        """Why the two runs cannot be compared; empty when each verb left the same state."""
        (ours_run, ours_states), (ref_run, ref_states) = results[OURS], results[REFERENCE]
        problems = []
        pairs = zip(ours_states, ref_states, strict=False)
        for number, (ours_state, ref_state) in enumerate(pairs, 1):
            ref_state = full_unload(ref_state, ours_state)
            for line in differences(ours_state, ref_state):
                problems.append(f"state after verb {number} differs: {line}")
        online = f"cluster/{CLUSTER}/" in ours_states[-1]["configfs"]
        ours_rcs = [normalise_rc(rc, OURS, case, online) for rc in ours_run.returncodes]
        if ours_rcs != ref_run.returncodes:
            problems.append(
                f"exit codes differ: ours {ours_run.returncodes}, reference {ref_run.returncodes}"
            )
        if case.compare_output:
            ours_out, ref_out = normalise_output(ours_run.stdout), normalise_output(ref_run.stdout)
            if ours_out != ref_out:
                problems.append(
                    "status output differs:\n"
                    f"--- ours ---\n{ours_out}\n--- reference ---\n{ref_out}"
                )
        return problems

    def measure(self, case: Case, rounds: int, count: bool = True) -> CaseResult:
        result = CaseResult(case, {name: [] for name in self.impls})
        for _ in range(rounds):
            this_round = {}
            for name, impl in self.impls.items():  # interleaved: ours, reference, ours...
                run, state = self.once(case, impl)
                result.runs[name].append(run)
                this_round[name] = (run, state)
            if self.floor is not None:
                result.runs.setdefault(FLOOR, []).append(
                    run_verbs(self.floor, ((),), "", self.scratch))
            if self.floor is not None and case.syscalls:
                result.runs.setdefault(SYSCALLS, []).append(self.syscalls(case))
            if REFERENCE in this_round:
                problems = self.check(case, this_round)
                if problems:
                    result.problems = problems
                    return result
        if count:
            for name, impl in self.impls.items():
                self.prepare(case)
                verbs, stdin_text = case.verbs, ""
                if name == REFERENCE and case.reference_verbs:
                    verbs, stdin_text = case.reference_verbs, case.reference_input
                result.processes[name] = count_processes(
                    impl, verbs, stdin_text, self.scratch, self.fake
                )
                self.fake.stop_fake_daemons()
        return result


# -- reporting -----------------------------------------------------------------


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


VERSIONS = (
    "import importlib.metadata as m, platform, sys; print(sys.executable,"
    " platform.python_version(), *(f'{n} {m.version(n)}' for n in"
    " ('click', 'configobj', 'psutil')))"
)


def interpreter_line() -> str:
    """The interpreter ours runs on, and the versions of its three dependencies."""
    import subprocess

    done = subprocess.run([sys.executable, "-I", "-c", VERSIONS], capture_output=True,
                          text=True, check=False)
    words = (done.stdout or done.stderr).split()
    return "interpreter: " + " ".join(words[:2]) + "; " + ", ".join(
        " ".join(words[i:i + 2]) for i in range(2, len(words), 2))


def report_lines(results: list[CaseResult], rounds: int) -> list[str]:
    load = load_average()
    lines = [
        interpreter_line(),
        f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        f"   ({os.cpu_count()} CPUs, {rounds} rounds, ours and reference interleaved)",
    ]
    if load[0] > 1.5:
        lines.append("WARNING: load above 1.5: judge on a quiet machine")
    header = (
        f"{'case':<26} {'impl':<9} {'median ms':>9} {'min':>6} {'max':>6} {'cpu ms':>6} "
        f"{'rss MiB':>7} {'procs':>5} {'ours/ref':>8} {'ours-nF':>7}"
    )
    lines += [f"floor F: {FLOOR_CODE!r} in ours' interpreter, once a round;"
              " ours-nF: ours' median less n times F's, n the verbs of the case",
              header, "-" * len(header)]
    for result in results:
        if result.problems:
            lines.append(f"{result.case.name:<26} NOT TIMED: ours and the reference differ")
            lines += [f"    {problem}" for problem in result.problems]
            continue
        medians = {
            name: statistics.median(run.seconds for run in runs)
            for name, runs in result.runs.items()
        }
        for name, runs in result.runs.items():
            seconds = [run.seconds for run in runs]
            ratio = above = ""
            if name == OURS and REFERENCE in medians:
                ratio = f"{medians[OURS] / medians[REFERENCE]:.2f}"
            if name == OURS and FLOOR in medians:  # n: the verbs of the case, each a start
                above = f"{(medians[OURS] - len(result.case.verbs) * medians[FLOOR]) * 1000:+.0f}"
            lines.append(
                f"{result.case.name if name == OURS else '':<26} {name:<9} "
                f"{ms(medians[name]):>9} {ms(min(seconds)):>6} {ms(max(seconds)):>6} "
                f"{ms(statistics.median(run.cpu_seconds for run in runs)):>6} "
                f"{max(run.max_rss_kib for run in runs) / 1024:>7.1f} "
                f"{result.processes.get(name, ''):>5} {ratio:>8} {above:>7}"
            )
    lines += target_lines(results)
    load = load_average()
    lines.append(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if load[0] > 1.5:
        lines.append("WARNING: load above 1.5: judge on a quiet machine")
    return lines


# Issue 17's targets, each against the floor F or the reference of the same run.
STATUS_ABOVE_F_MS = 5
START_STOP_RATIO = 1.0
NODES_ABOVE_2F_MS = 20
FEW_NODES, MANY_NODES = "online+offline 2 nodes", "online+offline 255 nodes"


def target_lines(results: list[CaseResult]) -> list[str]:
    """Each target, by wall and by CPU medians, where this run timed what it needs."""
    medians: dict[str, dict[str, tuple[float, float]]] = {}
    for result in results:
        if not result.problems:
            medians[result.case.name] = {
                name: (statistics.median(run.seconds for run in runs) * 1000,
                       statistics.median(run.cpu_seconds for run in runs) * 1000)
                for name, runs in result.runs.items()}

    def both(figure: Callable[[int], float], unit: str = " ms") -> str:
        return f"wall {figure(0):+.1f}{unit}, cpu {figure(1):+.1f}{unit}"

    lines = []
    for case in ("status offline", "status online"):
        times = medians.get(case, {})
        if OURS in times and FLOOR in times:
            lines.append(f"target {case}: ours - F <= +{STATUS_ABOVE_F_MS} ms: "
                         + both(lambda i, t=times: t[OURS][i] - t[FLOOR][i]))
    times = medians.get("start+stop", {})
    if OURS in times and REFERENCE in times:
        lines.append(f"target start+stop: ours/ref <= {START_STOP_RATIO:.1f}: "
                     f"wall {times[OURS][0] / times[REFERENCE][0]:.2f}, "
                     f"cpu {times[OURS][1] / times[REFERENCE][1]:.2f}")
    many, few = medians.get(MANY_NODES, {}), medians.get(FEW_NODES, {})
    if OURS in many and FLOOR in many:
        lines.append(f"target 255 nodes: ours - 2F <= +{NODES_ABOVE_2F_MS} ms: "
                     + both(lambda i: many[OURS][i] - 2 * many[FLOOR][i]))
    if OURS in many and OURS in few and REFERENCE in many and REFERENCE in few:
        lines.append("target growth 2 -> 255 nodes: ours <= ref: ours "
                     + both(lambda i: many[OURS][i] - few[OURS][i])
                     + "; ref " + both(lambda i: many[REFERENCE][i] - few[REFERENCE][i]))
    if SYSCALLS in many and SYSCALLS in few:
        lines.append("    the same changes alone from Python (syscalls): "
                     + both(lambda i: many[SYSCALLS][i] - few[SYSCALLS][i]))
    if lines:
        lines.append("target peak RSS: no higher than before (compare the rss column)")
    return lines


def floor_implementation(ours: Implementation) -> Implementation:
    """The floor, run as ours is (same environment, no chroot)."""
    return Implementation(FLOOR, [sys.executable, "-I", "-c", FLOOR_CODE], ours.env, None,
                          ours.bench_dir, ours.host_bench_dir)


def ours_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m o2cb_init``."""
    script = Path(sys.executable).parent / "o2cb.init"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "o2cb_init"]
