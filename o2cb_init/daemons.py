"""Control daemons of the userspace stacks: find, start, wait for, stop.

A daemon is known by the path of its program, never by a name: a process
is that daemon when the executable it runs resolves to the daemon's path,
or, for a script run by an interpreter (``#!/usr/bin/python3``), when the
script it was given does.  Only processes matched that way are ever
signalled, and before each signal the pid's start time is read again
(`Process`), so that a pid the kernel has given to another process since is
never signalled.  Both read /proc directly: psutil would cost a stop more
than the rest of its imports.

Programs are looked up as NAME.STACK, then NAME (ocfs2-tools installs
ocfs2_controld.cman and ocfs2_controld.pcmk), in /sbin and /usr/sbin under
the system's root, then on PATH.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable

from .changes import SIGNAL, START, Change
from .records import dataclass, field
from .system import System

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .processes import Child

DAEMON_DIRS = ("/sbin", "/usr/sbin")
TIMEOUT_VARIABLE = "O2CB_DAEMON_TIMEOUT"
DEFAULT_TIMEOUT = 5.0
# A started daemon must stay up this long before it counts as started
# ($O2CB_DAEMON_SETTLE seconds): long enough to see one that fails in set-up.
SETTLE_VARIABLE = "O2CB_DAEMON_SETTLE"
DEFAULT_SETTLE = 0.3
POLL_INTERVAL = 0.05
# A signalled daemon usually goes within milliseconds: look again soon at
# first, then every POLL_INTERVAL.
FIRST_POLL = 0.002


def _seconds(variable: str, default: float) -> float:
    try:
        value = float(os.environ.get(variable, "").strip())
    except ValueError:
        return default
    return value if value > 0 else default


def daemon_timeout() -> float:
    """How long to wait for a daemon to start or stop: $O2CB_DAEMON_TIMEOUT seconds, else 5."""
    return _seconds(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT)


def daemon_settle() -> float:
    """How long a new daemon must stay up: $O2CB_DAEMON_SETTLE seconds, else 0.3."""
    return _seconds(SETTLE_VARIABLE, DEFAULT_SETTLE)


class DaemonError(Exception):
    """A daemon would not start or stop; the message says which and why."""


@dataclass
class Daemon:
    """One control daemon of one stack, e.g. ocfs2_controld for cman."""

    system: System
    name: str
    stack: str
    timeout: float = field(default_factory=daemon_timeout)
    # False: only /sbin and /usr/sbin under the root, so a --root tree never
    # reaches for a program of the host it runs on.
    search_path: bool = True
    arguments: tuple[str, ...] = ()  # given to the program after its path
    _path: str | None = field(default=None, init=False, repr=False)

    # -- where it is ---------------------------------------------------------

    def candidates(self) -> list[str]:
        return [f"{self.name}.{self.stack}", self.name]

    def locate(self) -> str | None:
        """The daemon's program: NAME.STACK before NAME, /sbin and /usr/sbin before PATH."""
        if self._path is None:
            for program in self.candidates():
                self._path = self._find(program)
                if self._path:
                    break
            self.system.probe(f"{self.name} for {self.stack}: {self._path or 'not installed'}")
        return self._path

    def _find(self, program: str) -> str | None:
        for directory in DAEMON_DIRS:
            path = self.system.path(f"{directory}/{program}")
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
        return self.system.which(program) if self.search_path else None

    @property
    def label(self) -> str:
        """The name shown in step lines, the same whichever program was found."""
        return self.name

    # -- which processes are it ----------------------------------------------

    def processes(self) -> list[Process]:
        """Live processes running this daemon's program, as handles to signal.

        Each handle is made, then checked again to run the program, so that
        it cannot stand for a process that took over a pid in between.
        """
        path = self.locate()
        if path is None or self.system.planned_daemon(path) is False:
            return []
        target = os.path.realpath(path)
        interpreter = _interpreter(target)
        found = []
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                process = Process(pid)
                if _runs(pid, target, interpreter):
                    found.append(process)
        return found

    def pids(self) -> list[int]:
        """Pids of the live processes running this daemon's program (zombies are not alive)."""
        path = self.locate()
        if path is None or self.system.planned_daemon(path) is False:
            return []
        return running_pids(os.path.realpath(path))

    def is_running(self) -> bool:
        """Running, or started by the plan being built (which has no process to show)."""
        path = self.locate()
        return bool(self.pids()) or (path is not None and self.system.planned_daemon(path) is True)

    # -- start ---------------------------------------------------------------

    def launch(self) -> Child | None:
        """Start the program detached (own session, no terminal, cwd /) and return.

        Nothing waits for it here; None while planning, which only enters it.
        Raises DaemonError when it is not installed or cannot be executed.
        """
        path = self.locate()
        if path is None:
            raise DaemonError(f"{self.name} is not installed")
        if self.system.make(Change(START, path)) is not None:
            return None
        from . import processes

        try:
            return processes.launch(path, [path, *self.arguments], self.system.environment())
        except OSError as error:
            raise DaemonError(f"Unable to start {path}: {error.strerror}") from None

    def returned(self, child: Child, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for the launched process to return, as a shell
        running it in the foreground would; its exit status, None while it runs.

        A daemonizing program's parent returns as soon as it has forked the
        daemon, so when this comes back the daemon exists.  Waits on a pidfd:
        no polling, no sleeping.
        """
        import select

        try:
            handle = os.pidfd_open(child.pid)
        except OSError:
            return child.poll()
        try:
            select.select([handle], [], [], timeout)
        finally:
            os.close(handle)
        return child.poll()

    def start(self, ready: Callable[[], bool] | None = None, what: str = "") -> None:
        """Start the daemon detached and wait until it runs and ``ready()`` holds.

        Handles both kinds of daemon: one that stays in the foreground (its
        process is the one started here) and one that forks and lets its
        parent exit 0.  Raises DaemonError when it exits with a failure, or
        when it is not running (and ready) within the timeout; ``what``
        names the readiness condition in that message.
        """
        child = self.launch()
        if child is None:
            return
        deadline = time.monotonic() + self.timeout
        settled_at: float | None = None
        running = False
        while True:
            status = child.poll()
            if status is not None and status != 0:
                raise DaemonError(f"{self.label} exited with status {_describe(status)}")
            running = self.is_running()
            now = time.monotonic()
            if running and (ready is None or ready()):
                # Started, unless it gives up during its own set-up: see it stay.
                settled_at = settled_at or now + min(daemon_settle(), self.timeout / 2)
                if now >= settled_at:
                    return
            else:
                settled_at = None
            if now >= deadline:
                break
            time.sleep(POLL_INTERVAL)
        if not running:
            raise DaemonError(f"{self.label} did not start within {self.timeout:g} s")
        raise DaemonError(
            f"{self.label} is running but {what or 'not ready'} after {self.timeout:g} s"
        )

    # -- stop ----------------------------------------------------------------

    def stop(self, force: bool = False) -> list[int]:
        """SIGTERM every process of the daemon and wait for them to go.

        With ``force``, what is still there after the wait gets SIGKILL.
        Returns the pids that were stopped; raises DaemonError when one
        stays.
        """
        processes = self.processes()
        if not processes:
            return []
        pids = sorted(process.pid for process in processes)
        action = f"send SIGTERM to {self.label} (pid {_pids(pids)})"
        if self.system.make(Change(SIGNAL, self.locate() or self.name, text=action)) is not None:
            return pids
        remaining = signal_and_wait(processes, signal.SIGTERM, self.system, self.timeout)
        if remaining and force:
            self.system.probe(f"{self.label} ignored SIGTERM; sending SIGKILL")
            remaining = signal_and_wait(remaining, signal.SIGKILL, self.system, self.timeout)
        if remaining:
            still = sorted(process.pid for process in remaining)
            hint = "" if force else "; force-offline sends SIGKILL"
            raise DaemonError(
                f"{self.label} (pid {_pids(still)}) did not stop within {self.timeout:g} s{hint}"
            )
        return pids


class Process:
    """A process as it was found: its pid and the start time the kernel gives it.

    A pid whose start time differs is another process, which took the pid
    over after this one ended (psutil's Process checks the same).
    """

    __slots__ = ("pid", "_started")

    def __init__(self, pid: int) -> None:
        state = _state_and_start(pid)
        if state is None:
            raise ProcessLookupError(pid)
        self.pid = pid
        self._started = state[1]

    def state(self) -> str | None:
        """Its state letter (R, S, Z...); None when it is gone, its pid reused."""
        now = _state_and_start(self.pid)
        return now[0] if now is not None and now[1] == self._started else None

    def send_signal(self, signum: signal.Signals) -> None:
        """Signal it, unless it is gone (or may not be signalled: then it stays)."""
        if self.state() is not None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signum)

    def alive(self) -> bool:
        """A zombie holds nothing: it counts as gone (its parent reaps it, maybe later)."""
        return self.state() not in (None, "Z")


def _state_and_start(pid: int) -> tuple[str, str] | None:
    """Fields 3 and 22 of /proc/PID/stat (state, start time); None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode(errors="replace")
        fields = text.rsplit(")", 1)[1].split()  # the command, in parentheses, may hold spaces
        return fields[0], fields[19]
    except (OSError, IndexError):
        return None


def signal_and_wait(processes: list[Process], signum: signal.Signals, system: System,
                    timeout: float) -> list[Process]:
    """Send ``signum`` to each process and wait up to ``timeout`` s for them to go;
    the ones still there.  A pid that was reused is never signalled."""
    for process in processes:
        system.probe(f"sending {signum.name} to pid {process.pid}")
        process.send_signal(signum)
    deadline = time.monotonic() + timeout
    remaining = processes
    pause = FIRST_POLL
    while remaining and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, POLL_INTERVAL)
        remaining = [process for process in remaining if process.alive()]
    return remaining


def running_pids(target: str) -> list[int]:
    """Pids of the live processes that run the program at ``target`` (a realpath)."""
    interpreter = _interpreter(target)
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _runs(int(entry), target, interpreter):
            pids.append(int(entry))
    return sorted(pids)


def _runs(pid: int, target: str, interpreter: str | None) -> bool:
    """True when process ``pid`` is alive and runs the program at ``target`` (a realpath).

    Either its executable is that program, or the program is a script and
    the process is the script's interpreter running it: an editor or a
    pager that merely has the file open is never taken for the daemon.  A
    zombie, a kernel thread and a process we may not inspect have no
    readable /proc/PID/exe, so none is ever taken for it.  ``interpreter``:
    what the script's #! line names (None for a binary).
    """
    proc = f"/proc/{pid}"
    try:
        exe = os.readlink(f"{proc}/exe")  # the kernel gives the resolved path
        if exe == target:
            return True
        if interpreter is None or not _same_program(exe, interpreter):
            return False
        with open(f"{proc}/cmdline", "rb") as handle:
            arguments = handle.read().decode(errors="replace").split("\0")
        script = next((arg for arg in arguments[1:3] if arg and not arg.startswith("-")), None)
        if script is None:
            return False
        if not os.path.isabs(script):
            script = os.path.join(os.readlink(f"{proc}/cwd"), script)
        return os.path.realpath(script) == target
    except OSError:
        return False


def _interpreter(script: str) -> str | None:
    """The program named by a script's #! line (through env), or None for a binary."""
    try:
        with open(script, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if words and os.path.basename(words[0]) == "env":
        words = [word for word in words[1:] if not word.startswith("-") and "=" not in word]
    return words[0] if words else None


def _same_program(exe: str, interpreter: str) -> bool:
    """Whether the executable ``exe`` (a realpath) is what ``interpreter`` starts.

    A #! line names python3 while the process runs python3.11: compare
    resolved paths, then the file name with a version suffix allowed.
    """
    if os.path.isabs(interpreter) and os.path.realpath(interpreter) == exe:
        return True
    name = os.path.basename(interpreter)
    base = os.path.basename(exe)
    return base == name or (base.startswith(name) and base[len(name):].lstrip(".").isdigit())


def _describe(status: int) -> str:
    if status < 0:
        try:
            return f"{-status} ({signal.Signals(-status).name})"
        except ValueError:
            return str(-status)
    return str(status)


def _pids(pids: list[int]) -> str:
    return ", ".join(str(pid) for pid in pids)
