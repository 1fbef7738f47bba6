"""The one seam to the machine.

Every path the tool touches is root-relative ("/proc/modules") and is mapped
under ``root`` here, every external command runs here, and every change goes
through here.  Before each change the seam asks its recorder (changes.py)
whether to make it; while a verb is planned the answer is no, and the reads
then see the planned state it is given (overlay.py) over the real machine.
Tests and image builders point ``root`` at another directory; nothing else
in the package opens a kernel file or starts a process (daemons.py aside,
which reads the process table).  Programs start through processes.py, not
subprocess, and nothing imports shutil or tempfile: the interpreter's
start-up is most of a verb's time.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

from .changes import (
    MKDIR,
    REMOVE,
    REPLACE,
    RMDIR,
    RUN,
    WRITE,
    Change,
    CommandResult,
    Immediately,
    Recorder,
)
from .errors import MissingProgramError
from .overlay import PlannedState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["CommandResult", "System"]


class System:
    def __init__(self, root: str = "/", dry_run: bool = False, verbose: bool = False,
                 log: TextIO | None = None) -> None:
        self.root = root
        self.dry_run = dry_run
        self.verbose = verbose
        self.log = log or sys.stderr
        self.recorder: Recorder = Immediately()
        self.state = PlannedState()  # empty unless a plan is being built
        self.made: list[Change] = []  # every change made, in order
        self._prefix = root.rstrip("/")

    @property
    def changes_machine(self) -> bool:
        """False in a dry run, which only prints what it would change."""
        return not self.dry_run

    # -- paths ---------------------------------------------------------------

    def path(self, path: str) -> str:
        """Map a root-relative absolute path ("/proc/modules") into ``root``."""
        return f"{self._prefix}/{path.lstrip('/')}"

    def exists(self, path: str) -> bool:
        state = self.state
        if state and state.is_made(path):
            return True
        return os.path.exists(self.path(path)) and not (state and state.is_away(path))

    def is_dir(self, path: str) -> bool:
        state = self.state
        if state and path in state.created_dirs:
            return True
        return os.path.isdir(self.path(path)) and not (state and state.is_away(path))

    def listdir(self, path: str) -> list[str]:
        """Entries of a directory, sorted; a missing directory has none."""
        try:
            names = set(os.listdir(self.path(path)))
        except (FileNotFoundError, NotADirectoryError):
            names = set()
        state = self.state
        if not state:
            return sorted(names)
        names |= state.children(path)
        return sorted(name for name in names if not state.is_away(f"{path}/{name}"))

    def read_text(self, path: str) -> str:
        with open(self.path(path), encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def read_optional(self, path: str) -> str | None:
        """The file's text, or None when it does not exist."""
        state = self.state
        if state:
            if path in state.values:
                return f"{state.values[path]}\n"
            if state.is_away(path):
                return None
        try:
            return self.read_text(path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read_attribute(self, path: str) -> str | None:
        """A one-value kernel attribute (sysfs, configfs, procfs), stripped."""
        text = self.read_optional(path)
        return None if text is None else text.strip()

    def read_records(self, path: str) -> list[str] | None:
        """The records of a record device such as /dev/kmsg, each read() one record,
        read without blocking until there are no more; None when it cannot be opened
        (missing, or not readable by this user: dmesg_restrict needs CAP_SYSLOG)."""
        try:
            fd = os.open(self.path(path), os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return None
        records = []
        try:
            while True:
                try:
                    chunk = os.read(fd, 8192)
                except BlockingIOError:
                    break  # the newest record was read
                except BrokenPipeError:
                    continue  # the kernel overwrote the next record meanwhile
                except OSError:
                    break
                if not chunk:
                    break  # the end of a plain file
                records.append(chunk.decode("utf-8", errors="replace"))
        finally:
            os.close(fd)
        return records

    def planned_daemon(self, program: str) -> bool | None:
        """True when the plan started ``program``, False when it stopped it, else None."""
        if program in self.state.started:
            return True
        return False if program in self.state.stopped else None

    # -- changes -------------------------------------------------------------

    def make(self, change: Change) -> CommandResult | None:
        """Ask the recorder before a change: None to make it now, else its planned result."""
        planned = self.recorder.record(change)
        if planned is None:
            self.made.append(change)
            if self.verbose:  # the line is only made to be shown
                self.probe(str(change))
        return planned

    def record_undo(self, title: str, undo: Callable[[], None]) -> None:
        """A change was just made (or planned): ``undo`` takes it back."""
        self.recorder.undo(title, undo)

    def write_attribute(self, path: str, value: str) -> None:
        """Write one value to a kernel attribute file, as `echo value > file` does."""
        if self.make(Change(WRITE, path, value)) is not None:
            return
        # One open, write and close, as the shell makes them; a kernel attribute
        # refuses a value in its write, which raises OSError here.
        data = f"{value}\n".encode()
        fd = os.open(self.path(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)

    def mkdir(self, path: str, parents: bool = False) -> None:
        if self.make(Change(MKDIR, path)) is not None:
            return
        if parents:
            os.makedirs(self.path(path), exist_ok=True)
        else:
            os.mkdir(self.path(path))

    def rmdir(self, path: str) -> None:
        if self.make(Change(RMDIR, path)) is None:
            os.rmdir(self.path(path))

    def remove_file(self, path: str) -> None:
        if self.make(Change(REMOVE, path)) is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(path))

    def replace_file(self, path: str, data: str, mode: int = 0o644) -> None:
        """Atomically replace a file: temp file in the same directory, fsync, rename.

        A reader sees the old file or the new one, whole, never a mixture; on
        failure the old file is left as it was.
        """
        if self.make(Change(REPLACE, path, data)) is not None:
            return
        target = self.path(path)
        directory, name = os.path.split(target)
        fd, temp_name = _new_file_beside(directory, name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fchmod(handle.fileno(), mode)
                os.fsync(handle.fileno())
            os.replace(temp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # -- commands ------------------------------------------------------------

    def which(self, program: str) -> str | None:
        """The program's path as the shell finds it on PATH, None when there is none."""
        search = os.environ.get("PATH", os.defpath)
        if "/" in program:
            search = ""
        elif not search:
            return None
        for directory in search.split(":"):
            path = os.path.join(directory, program)
            if os.access(path, os.X_OK) and not os.path.isdir(path):
                return path
        return None

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["O2CB_ROOT"] = str(self.root)
        return env

    def run(self, argv: list[str], changes: bool = True) -> CommandResult:
        """Run a command by name from PATH.

        ``changes`` marks commands that alter the machine: they are made only
        when the recorder says so, and otherwise answer as planned.  A program
        that is not installed raises MissingProgramError (LSB exit 5).
        """
        path = self.which(argv[0])
        if path is None:
            raise MissingProgramError(f"{argv[0]} not found: it is needed to run this command")
        if changes:
            planned = self.make(Change(RUN, argv=tuple(argv)))
            if planned is not None:
                return planned
        else:
            self.probe("run " + " ".join(argv))
        from . import processes

        return CommandResult(*processes.run(path, argv, self.environment()))

    # -- facts about this host -----------------------------------------------

    def hostname(self) -> str:
        """This node's name: the kernel's hostname under root, as uname -n gives it."""
        name = self.read_attribute("/proc/sys/kernel/hostname")
        return name or os.uname().nodename

    def local_addresses(self) -> set[str] | None:
        """The IP addresses of this host's interfaces (psutil); None when unreadable."""
        import psutil  # here: only check and start look at the interfaces

        try:
            interfaces = psutil.net_if_addrs()
        except OSError:
            return None
        return {entry.address.split("%", 1)[0] for entries in interfaces.values()
                for entry in entries}

    def is_root_user(self) -> bool:
        return os.geteuid() == 0

    def probe(self, message: str) -> None:
        """In verbose mode, say what is being looked at or done."""
        if self.verbose:
            print(f"o2cb: {message}", file=self.log, flush=True)


def _new_file_beside(directory: str, name: str) -> tuple[int, str]:
    """A new empty file ``.NAME.RANDOM`` in ``directory``, mode 0600, open for
    writing, as tempfile.mkstemp makes one; importing tempfile (with random,
    hashlib and shutil) would cost every start more than writing the file."""
    while True:
        temp_name = os.path.join(directory, f".{name}.{os.urandom(6).hex()}")
        try:
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
            return os.open(temp_name, flags, 0o600), temp_name
        except FileExistsError:
            continue
