"""The one seam to the machine.

Every path the tool touches is root-relative ("/proc/modules") and is mapped
under ``root`` here, every external command runs here, and every change goes
through a method that honours planning.  While a verb is planned (plan.py),
and always in a dry run, a change is not made: it is entered in the step
being planned, and the overlay records what it would leave.  Tests and
image builders point ``root`` at another directory; nothing else in the
package opens a kernel file or starts a process (daemons.py aside, which
reads the process table).  subprocess, shutil and tempfile are imported
where they are used: `status` runs no command and writes no file, and the
interpreter's start-up is most of its time.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .errors import MissingProgramError, O2cbError
from .overlay import PlannedState
from .plan import Journal, Part, Step


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def reason(self) -> str:
        """The command's own explanation, one line, for an error message.

        The first line: mount(8) follows its reason with a hint about dmesg.
        """
        text = (self.stderr or self.stdout).strip()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[0] if lines else f"exit status {self.returncode}"


@dataclass
class System:
    root: str = "/"
    dry_run: bool = False
    verbose: bool = False
    log: TextIO = field(default_factory=lambda: sys.stderr)
    journal: Journal = field(default_factory=Journal)
    # The plan's view of its own changes, so that later steps are planned as
    # the earlier ones will leave the machine; empty while a plan is carried out.
    overlay: PlannedState = field(default_factory=PlannedState)
    # While a verb is planned: the part being built, and the step whose code runs.
    building: Part | None = None
    open_step: Step | None = None

    @property
    def changes_machine(self) -> bool:
        """False in a dry run, which only prints what it would change."""
        return not self.dry_run

    @property
    def planning(self) -> bool:
        """Changes are entered in the plan, not made: in a dry run, or while a verb is planned."""
        return self.dry_run or self.building is not None

    # -- planning --------------------------------------------------------------

    def plan_step(self, title: str | None, carry_out: Callable[[], None],
                  needed: Callable[[], bool] | None = None) -> None:
        """Enter a step in the part being planned, finding what it would change.

        The step's code runs now in planning mode; what it raises is the
        step's foreseen outcome and ends the planning.  A step with a
        ``needed`` condition that the planned state does not meet is kept,
        unplanned, for its condition to be asked again when carried out.
        Only between steps of a part being built (report.step sees to it).
        """
        assert self.building is not None and self.open_step is None
        step = Step(title, carry_out, needed=needed)
        self.building.steps.append(step)
        if needed is not None and not needed():
            step.expected = False  # not planned further: nothing it would change is known
            return
        self.open_step = step
        try:
            carry_out()
        except (OSError, O2cbError) as error:
            step.foreseen = error
            raise
        finally:
            self.open_step = None

    def start_planning(self, part: Part) -> None:
        self.building = part

    def stop_planning(self) -> None:
        """Back to making changes: what the plan would leave no longer answers questions."""
        self.building = None
        if not self.dry_run:
            self.overlay = PlannedState()

    # -- paths ---------------------------------------------------------------

    def path(self, path: str) -> Path:
        """Map a root-relative absolute path ("/proc/modules") into ``root``."""
        return Path(self.root) / path.lstrip("/")

    def exists(self, path: str) -> bool:
        if self.overlay.is_made(path):
            return True
        return self.path(path).exists() and not self.overlay.is_away(path)

    def is_dir(self, path: str) -> bool:
        if path in self.overlay.created_dirs:
            return True
        return self.path(path).is_dir() and not self.overlay.is_away(path)

    def listdir(self, path: str) -> list[str]:
        """Entries of a directory, sorted; a missing directory has none."""
        try:
            names = set(os.listdir(self.path(path)))
        except (FileNotFoundError, NotADirectoryError):
            names = set()
        names |= self.overlay.children(path)
        return sorted(name for name in names if not self.overlay.is_away(f"{path}/{name}"))

    def record_undo(self, title: str, undo: Callable[[], None]) -> None:
        """Enter a change just made in the run's journal with its undo.

        While planning, a step's code records its undos when it is carried
        out; between steps, the undo is a quiet step of its own, so that it
        is recorded at that point of the run.
        """
        if not self.planning:
            self.journal.record(title, undo)
        elif self.open_step is not None:
            self.open_step.undos.append(title)
        elif self.building is not None:
            self.building.steps.append(Step(None, lambda: self.journal.record(title, undo)))

    def read_text(self, path: str) -> str:
        return self.path(path).read_text(encoding="utf-8", errors="replace")

    def read_optional(self, path: str) -> str | None:
        """The file's text, or None when it does not exist."""
        if path in self.overlay.values:
            return f"{self.overlay.values[path]}\n"
        if self.overlay.is_away(path):
            return None
        try:
            return self.read_text(path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read_attribute(self, path: str) -> str | None:
        """A one-value kernel attribute (sysfs, configfs, procfs), stripped."""
        text = self.read_optional(path)
        return None if text is None else text.strip()

    # -- changes -------------------------------------------------------------

    def _plan(self, action: str) -> bool:
        """Enter a change in the step being planned; True when it should really be made."""
        if self.planning:
            if self.open_step is None:
                raise RuntimeError(f"planned a change outside a step: {action}")
            self.open_step.changes.append(action)
            return False
        self.probe(action)
        return True

    def changes(self, action: str, leaves: Callable[[], None] | None = None) -> bool:
        """Record a change made without a command (a signal, a daemon started);
        True when it should really be made.  While planning ``leaves`` enters in
        the overlay what the change would leave."""
        if self._plan(action):
            return True
        if leaves is not None:
            leaves()
        return False

    def write_attribute(self, path: str, value: str) -> None:
        """Write one value to a kernel attribute file, as `echo value > file` does."""
        if not self._plan(f"write {value!r} to {path}"):
            self.overlay.write(path, value)
            return
        with open(self.path(path), "w", encoding="utf-8") as handle:
            handle.write(f"{value}\n")

    def mkdir(self, path: str, parents: bool = False) -> None:
        if not self._plan(f"create directory {path}"):
            self.overlay.make_dir(path)
            return
        if parents:
            self.path(path).mkdir(parents=True, exist_ok=True)
        else:
            self.path(path).mkdir()

    def rmdir(self, path: str) -> None:
        if not self._plan(f"remove directory {path}"):
            self.overlay.remove(path)
            return
        self.path(path).rmdir()

    def remove_file(self, path: str) -> None:
        if not self._plan(f"remove {path}"):
            self.overlay.remove(path)  # gone, as a removed directory is
            return
        self.path(path).unlink(missing_ok=True)

    def replace_file(self, path: str, data: str, mode: int = 0o644) -> None:
        """Atomically replace a file: temp file in the same directory, fsync, rename.

        A reader sees the old file or the new one, whole, never a mixture; on
        failure the old file is left as it was.
        """
        if not self._plan(f"write {path}"):
            self.overlay.write(path, data.rstrip("\n"))
            return
        import tempfile

        target = self.path(path)
        directory = target.parent
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
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
        import shutil

        return shutil.which(program)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["O2CB_ROOT"] = str(self.root)
        return env

    def run(
        self, argv: list[str], changes: bool = True, rehearsal: list[str] | None = None,
        leaves: Callable[[CommandResult], None] | None = None,
    ) -> CommandResult:
        """Run a command by name from PATH.

        ``changes`` marks commands that alter the machine; while planning they
        are only recorded, and the answer is that of ``rehearsal`` (the command's
        own trial mode, such as `modprobe -n`) when one is given, else
        success.  When that answer is a success, ``leaves`` enters in the
        overlay what the command would have left.  A program that is not
        installed raises MissingProgramError (LSB exit 5).
        """
        if self.which(argv[0]) is None:
            raise MissingProgramError(f"{argv[0]} not found: it is needed to run this command")
        if changes and not self._plan("run " + " ".join(argv)):
            trial = self.run(rehearsal, changes=False) if rehearsal else CommandResult(0, "", "")
            if trial.ok and leaves is not None:
                leaves(trial)
            return trial
        if not changes:
            self.probe("run " + " ".join(argv))
        import subprocess

        completed = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=self.environment(),
            check=False,
        )
        return CommandResult(completed.returncode, completed.stdout, completed.stderr)

    # -- facts about this host -----------------------------------------------

    def hostname(self) -> str:
        """This node's name: the kernel's hostname under root, as uname -n gives it."""
        name = self.read_attribute("/proc/sys/kernel/hostname")
        return name or os.uname().nodename

    def is_root_user(self) -> bool:
        return os.geteuid() == 0

    def probe(self, message: str) -> None:
        """In verbose mode, say what is being looked at or done."""
        if self.verbose:
            print(f"o2cb: {message}", file=self.log, flush=True)
