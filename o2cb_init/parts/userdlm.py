"""userdlm domains under /dlm: who holds them, cleaning them at offline, listing them.

A userdlm domain is a directory in the mounted ocfs2_dlmfs; each file in it
is a lock, held by the processes that have it open.  While one is open,
ocfs2_dlmfs cannot be unmounted ("target is busy") and its domain keeps the
cluster in use.  The reference script kills every such process at each
offline; here `offline` and `stop` refuse instead, naming them, before
anything is stopped, and only `force-offline` ends them (SIGTERM, then
SIGKILL).  Domains nobody holds are removed, as the reference does.

Nothing is cleaned while a volume is mounted or a local heartbeat region
runs (fsck.ocfs2 and tunefs.ocfs2 start one and lock through /dlm): the
stack then refuses to go offline anyway, and its userdlm clients must keep
running with it.  Global heartbeat regions run whenever the cluster is
online; they do not stop the clean-up, which comes before they are stopped.
"""

from __future__ import annotations

import contextlib
import os
import stat

from ..changes import SIGNAL, Change
from ..errors import StepError, shown
from ..kernel import DLMFS_MOUNTPOINT
from ..records import dataclass
from ..status import StatusReport

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..context import Context
    from ..daemons import Process

STEP = "Clean userdlm domains"
KILL_GRACE = 2.0  # seconds a holder has to go after SIGTERM, then after SIGKILL
SHOWN_HOLDERS = 5  # holders an error line names; the rest are counted
COMMAND_SHOWN = 40


@dataclass(frozen=True)
class Holder:
    """A process with a file (or its working directory) under /dlm."""

    process: Process
    command: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def __str__(self) -> str:
        return f"pid {self.pid} ({shown(self.command, COMMAND_SHOWN)})"


class UserdlmDomains:
    def __init__(self, context: Context) -> None:
        self.system = context.system
        self.kernel = context.kernel
        self.steps = context.steps

    def mounted(self) -> bool:
        return self.kernel.mounted_fstype(DLMFS_MOUNTPOINT) == "ocfs2_dlmfs"

    def domains(self) -> list[str]:
        """The domains in the mounted ocfs2_dlmfs (none when it is not mounted)."""
        if not self.mounted():
            return []
        return [name for name in self.system.listdir(DLMFS_MOUNTPOINT)
                if self.system.is_dir(f"{DLMFS_MOUNTPOINT}/{name}")]

    def holders(self) -> list[Holder]:
        """Live processes, other than this one, with a file or their cwd under /dlm."""
        if not self.mounted():
            return []
        top = os.path.realpath(self.system.path(DLMFS_MOUNTPOINT))
        # Lock files exist only inside domains: without one, only a working
        # directory can hold /dlm, and the costlier look at open files is skipped.
        files = bool(self.domains())
        from ..daemons import Process

        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                if _holds(f"/proc/{entry}", top, files):
                    found.append(Holder(Process(int(entry)), _command(f"/proc/{entry}")))
            except OSError:  # gone, a zombie, or not ours to look at
                continue
        self.system.probe(f"processes holding {DLMFS_MOUNTPOINT}: "
                          f"{', '.join(str(h.pid) for h in found) or 'none'}")
        return found

    # -- offline -------------------------------------------------------------

    def clean(self, force: bool = False) -> None:
        """Refuse while a process holds /dlm (force: end it); remove the domains.

        Prints its step only when there is something to clean.
        """
        if not self.mounted() or self._stack_stays():
            return
        holders = self.holders()
        domains = self.domains()
        if not holders and not domains:
            return

        def clean_domains() -> None:
            if holders and not force:
                raise StepError(_in_use(holders))
            if holders:
                self._end(holders)
            failures = [error for name in domains if (error := self._remove(name))]
            if failures:
                raise StepError(failures[0])

        self.steps.add(STEP, clean_domains)

    def _stack_stays(self) -> bool:
        """A volume is mounted, or a local heartbeat region runs: offline will refuse."""
        for target in self.kernel.configfs().clusters():
            if target.heartbeat.read("mode") != "global" and target.heartbeat_regions():
                return True
        return bool(self.kernel.mounts_of_type("ocfs2"))

    def _end(self, holders: list[Holder]) -> None:
        import signal

        from ..daemons import signal_and_wait

        holders = [holder for holder in holders
                   if self.system.make(Change(SIGNAL, text=f"send SIGTERM to {holder}")) is None]
        if not holders:
            return  # planning: the signals are sent when the step is carried out
        remaining = signal_and_wait([h.process for h in holders], signal.SIGTERM, self.system,
                                    KILL_GRACE)
        if remaining:
            remaining = signal_and_wait(remaining, signal.SIGKILL, self.system, KILL_GRACE)
        if remaining:
            pids = ", ".join(str(process.pid) for process in remaining)
            raise StepError(f"Unable to end the processes holding {DLMFS_MOUNTPOINT}: "
                            f"pid {pids} still running after SIGKILL")

    def _remove(self, name: str) -> str | None:
        """Remove a domain: its lock files, then its directory; the reason when it fails."""
        domain = f"{DLMFS_MOUNTPOINT}/{name}"
        try:
            for lock in self.system.listdir(domain):
                self.system.remove_file(f"{domain}/{lock}")
            self.system.rmdir(domain)
        except OSError as error:
            return f"Unable to remove userdlm domain {shown(name)}: {error.strerror or error}"
        return None

    # -- status --------------------------------------------------------------

    def status(self, report: StatusReport) -> None:
        """The active domains, in the reference's words (a line only when there are any)."""
        domains = self.domains()
        report.facts["userdlm_domains"] = domains
        if domains:
            report.lines.append(f"Active userdlm domains:  {' '.join(domains)}")


def _holds(proc: str, top: str, files: bool) -> bool:
    """Whether the process at /proc/PID has its cwd, or (``files``) an open
    regular file, under ``top``.  Raises OSError when it cannot be read."""
    if _under(os.readlink(f"{proc}/cwd"), top):
        return True
    if not files:
        return False
    for fd in os.listdir(f"{proc}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            if (_under(os.readlink(f"{proc}/fd/{fd}"), top)
                    and stat.S_ISREG(os.stat(f"{proc}/fd/{fd}").st_mode)):
                return True
    return False


def _command(proc: str) -> str:
    """Its command line, else (a kernel thread) its name."""
    with open(f"{proc}/cmdline", "rb") as handle:
        words = handle.read().decode(errors="replace").rstrip("\0").split("\0")
    if any(words):
        return " ".join(words)
    with open(f"{proc}/comm", encoding="utf-8", errors="replace") as handle:
        return handle.read().rstrip("\n")


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _in_use(holders: list[Holder]) -> str:
    named = ", ".join(str(holder) for holder in holders[:SHOWN_HOLDERS])
    more = len(holders) - SHOWN_HOLDERS
    if more > 0:
        named += f" and {more} more"
    return (f"userdlm domains in {DLMFS_MOUNTPOINT} are in use by {named}: stop them,"
            " or force-offline ends them")
