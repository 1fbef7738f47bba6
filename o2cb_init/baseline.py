"""What the kernel had before this tool loaded anything.

`load` records the modules and mounts that already existed (once, until the
next full `unload`), so that `unload` leaves what other subsystems had: a
configfs that systemd mounted at boot, or a dlm another filesystem uses,
stays as it was.  The ocfs2 modules themselves go when unused, whoever
loaded them (parts/drivers.py, SHARED_MODULES).  Without a record (the
stack was started by another tool) `unload` removes every unused driver of
the stack.
"""

from __future__ import annotations

from .kernel import Kernel
from .records import dataclass, field
from .system import System

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .context import Steps

BASELINE_FILE = "/run/o2cb/baseline.json"


@dataclass(frozen=True)
class Baseline:
    modules: frozenset[str] = field(default_factory=frozenset)
    mountpoints: frozenset[str] = field(default_factory=frozenset)

    def had_module(self, name: str) -> bool:
        return name in self.modules

    def had_mount(self, mountpoint: str) -> bool:
        return mountpoint in self.mountpoints


def record(system: System, kernel: Kernel, steps: Steps, mountpoints: list[str]) -> None:
    """Remember the current state unless a record from an earlier load exists.

    The state is read now, while the verb is planned, before any change.
    """
    if system.exists(BASELINE_FILE):
        return
    import json  # here: status never needs it

    state = {
        "modules": sorted(kernel.modules()),
        "mountpoints": sorted(m for m in mountpoints if kernel.mounted_fstype(m)),
    }

    def write_record() -> None:
        try:
            system.mkdir("/run/o2cb", parents=True)
            system.replace_file(BASELINE_FILE, json.dumps(state, indent=1) + "\n")
            system.record_undo("recording the baseline", lambda: forget(system))
        except OSError as error:
            # Without a record, unload falls back to removing every unused driver.
            system.probe(f"cannot record the baseline in {BASELINE_FILE}: {error.strerror}")

    steps.add(None, write_record)


def read(system: System) -> Baseline:
    text = system.read_optional(BASELINE_FILE)
    if not text:
        return Baseline()
    import json

    try:
        state = json.loads(text)
        return Baseline(frozenset(state["modules"]), frozenset(state["mountpoints"]))
    except (ValueError, KeyError, TypeError):
        system.probe(f"{BASELINE_FILE} is unreadable; ignoring it")
        return Baseline()


def forget(system: System) -> None:
    if system.exists(BASELINE_FILE):
        system.remove_file(BASELINE_FILE)
