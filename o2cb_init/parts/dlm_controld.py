"""dlm_controld for the pcmk stack: find it, start it when nothing runs it, stop only ours.

dlm_controld joins corosync's membership and builds the kernel DLM's
cluster in configfs (`dlm/cluster`); ocfs2 then joins each volume's
lockspace through it.  Where Pacemaker runs (or is enabled), its
`ocf:pacemaker:controld` resource owns dlm_controld: this tool never
starts it then.  Otherwise start brings it up when it does not run, through
dlm.service where systemd runs the machine and has the unit, else as the
program itself (`dlm_controld --foreground` and /etc/default/dlm's
DLM_CONTROLD_OPTS, as the unit runs it), and records how in
/run/o2cb/dlm_controld.  Stop takes it
down only when that record says this tool started it and no lockspace
needs it; a stop never sends it SIGKILL (dlm.service says SendSIGKILL=no:
a killed dlm_controld with lockspaces gets its node fenced).
"""

from __future__ import annotations

from ..daemons import Daemon, DaemonError
from ..errors import MissingProgramError, StepError
from ..status import StatusReport
from .volumes import lockspaces

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..context import Context

NAME = "dlm_controld"
UNIT = "dlm.service"
UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
RECORD = "/run/o2cb/dlm_controld"  # how this tool started it: "systemd" or "program"
SYSTEMD = "systemd"
PROGRAM = "program"
DEFAULTS = "/etc/default/dlm"  # the dlm-controld package's DLM_CONTROLD_OPTS
PACEMAKER_WANTS = "/etc/systemd/system/multi-user.target.wants/pacemaker.service"


class DlmControld:
    def __init__(self, context: Context) -> None:
        self.system = context.system
        self.kernel = context.kernel
        self.steps = context.steps
        # Under a --root tree only that tree's programs: never the host's daemon.
        # In the foreground, as dlm.service runs it, with the package's options.
        self.daemon = Daemon(self.system, NAME, "pcmk", search_path=self.system.root == "/",
                             arguments=("--foreground", *self._options()))
        self.pacemakerd = Daemon(self.system, "pacemakerd", "pcmk",
                                 search_path=self.system.root == "/")

    def _options(self) -> list[str]:
        """DLM_CONTROLD_OPTS from /etc/default/dlm, which dlm.service passes too."""
        import shlex

        for line in (self.system.read_optional(DEFAULTS) or "").splitlines():
            key, _, value = line.strip().partition("=")
            if key == "DLM_CONTROLD_OPTS":
                try:  # the shell's assignment, then split at blanks as the unit's $VAR
                    return " ".join(shlex.split(value)).split()
                except ValueError:
                    self.system.probe(f"{DEFAULTS}: DLM_CONTROLD_OPTS is not shell words;"
                                      " starting dlm_controld without them")
        return []

    def require(self) -> None:
        """dlm_controld must be installed (LSB exit 5), whoever runs it."""
        if self.daemon.locate() is None:
            raise MissingProgramError(
                f"cluster stack pcmk needs {NAME}: it is not installed (looked for"
                f" {' and '.join(self.daemon.candidates())} in /sbin, /usr/sbin and PATH)"
            )

    def is_running(self) -> bool:
        return self.daemon.is_running()

    def cluster_ready(self) -> bool:
        """dlm_controld has built its cluster in configfs: the DLM can make lockspaces."""
        return self.system.is_dir(f"{self.kernel.configfs_mountpoint()}/dlm/cluster")

    def started_by_us(self) -> str | None:
        """How this tool started the running dlm_controld, from its record; None: not ours."""
        how = (self.system.read_optional(RECORD) or "").strip()
        return how if how in (SYSTEMD, PROGRAM) else None

    def _systemd_unit(self) -> bool:
        """systemd runs this machine (PID 1) and knows dlm.service."""
        if not self.system.is_dir("/run/systemd/system") or not self.system.which("systemctl"):
            return False
        return any(self.system.exists(f"{directory}/{UNIT}") for directory in UNIT_DIRS)

    def _pacemaker(self) -> str | None:
        if self.pacemakerd.pids():
            return "Pacemaker is running"
        if self.system.exists(PACEMAKER_WANTS):
            return "Pacemaker is enabled"
        return None

    # -- start ---------------------------------------------------------------

    def start(self) -> None:
        """Start dlm_controld unless it runs; refused where Pacemaker owns it."""
        if self.is_running():
            return
        pacemaker = self._pacemaker()
        if pacemaker:
            def refuse() -> None:
                raise StepError(
                    f"{NAME} is not running, and {pacemaker}: start its controld resource"
                    " (ocf:pacemaker:controld) first, and o2cb after it"
                )

            self.steps.add(f"Starting {NAME}", refuse)
            return
        how = SYSTEMD if self._systemd_unit() else PROGRAM
        title = f"Starting {NAME}" + (f" ({UNIT})" if how == SYSTEMD else "")
        self.steps.add(title, lambda: self._start(how))

    def _start(self, how: str) -> None:
        if how == SYSTEMD:
            result = self.system.run(["systemctl", "start", UNIT])
            if not result.ok:
                raise StepError(f"Unable to start {UNIT}: {result.reason}")
            self.system.record_undo(f"starting {UNIT}", lambda: self._stop(how))
        else:
            try:
                self.daemon.start(self.cluster_ready,
                                  "its cluster has not appeared in configfs (dlm/cluster)")
            except DaemonError as error:
                self._stop(how)
                raise StepError(f"Unable to start {NAME}: {error}") from None
            self.system.record_undo(f"starting {NAME}", lambda: self._stop(how))
        self._remember(how)

    def _remember(self, how: str) -> None:
        try:
            self.system.mkdir("/run/o2cb", parents=True)
            self.system.replace_file(RECORD, f"{how}\n")
        except OSError as error:
            # Without the record stop leaves dlm_controld running: the safe side.
            self.system.probe(f"cannot record in {RECORD} that {NAME} was started: "
                              f"{error.strerror}")
            return
        self.system.record_undo(f"recording {NAME}", self._forget)

    def _forget(self) -> None:
        if self.system.exists(RECORD):
            self.system.remove_file(RECORD)

    # -- stop ----------------------------------------------------------------

    def stop(self) -> None:
        """Stop dlm_controld if this tool started it and no lockspace needs it."""
        how = self.started_by_us()
        if how is None:
            if self.is_running():
                self.system.probe(f"{NAME} was not started by o2cb; leaving it running")
            return
        if not self.is_running():
            self.steps.add(None, self._forget)
            return
        names = lockspaces(self.system)
        if names:
            self.system.probe(f"lockspace {names[0]} is active; leaving {NAME} running")
            return
        self.steps.add(f"Stopping {NAME}", lambda: self._stop_and_forget(how))

    def _stop_and_forget(self, how: str) -> None:
        self._stop(how)
        self._forget()

    def _stop(self, how: str) -> None:
        if how == SYSTEMD:
            result = self.system.run(["systemctl", "stop", UNIT])
            if not result.ok:
                raise StepError(f"Unable to stop {UNIT}: {result.reason}")
            return
        try:
            self.daemon.stop(force=False)
        except DaemonError as error:
            raise StepError(f"Unable to stop {NAME}: {error}") from None

    # -- status --------------------------------------------------------------

    def status(self, report: StatusReport) -> None:
        path = self.daemon.locate()
        pids = self.daemon.pids()
        facts: dict[str, Any] = {"program": path, "pids": pids, "running": bool(pids),
                                 "started_by_o2cb": self.started_by_us() is not None}
        if pids:
            state = f"running (pid {', '.join(map(str, pids))})"
        else:
            state = "not running" if path else "not installed"
        report.lines.append(f"Checking for {NAME}: {state}")
        report.facts[NAME] = facts
