"""The drivers a stack needs: load them, unload what this tool loaded, show them.

`load` records what the kernel had before (baseline.py), loads configfs,
the stack plugin (stack-glue kernels) or heartbeat driver (2007-era
kernels) and ocfs2_dlmfs, and mounts configfs and ocfs2_dlmfs.  `unload`
takes away only what load brought in.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .. import baseline
from ..configfs import Configfs
from ..errors import StepError, UnsupportedError
from ..kernel import CLUSTER_STACK_FILE, DLMFS_MOUNTPOINT, Generation, Module
from ..records import dataclass, field
from ..status import StatusReport, loaded_word
from . import volumes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..context import Context

STACKGLUE_MODULE = "ocfs2_stackglue"
DEBUGFS_MOUNTPOINT = "/sys/kernel/debug"

# Removal order: users before what they use.  modprobe -r takes along a
# module's unused dependencies; the order still matters for what it cannot.
STACK_MODULES = (
    "ocfs2_dlmfs",
    "ocfs2_stack_o2cb",
    "ocfs2_stack_user",
    "ocfs2",
    "ocfs2_disk_heartbeat",
    "ocfs2_user_heartbeat",
    "ocfs2_dlm",
    "ocfs2_nodemanager",
    STACKGLUE_MODULE,
    "dlm",
)

# configfs directories that belong to the ocfs2 stack; anything else in
# configfs (nvmet, usb_gadget, target...) is someone else's and keeps it.
# `dlm` comes with the dlm module; dlm_controld's cluster in it keeps configfs
# (volumes.dlm_keeper).
OWN_CONFIGFS_ENTRIES = {"cluster", "dlm"}
# What a lockspace or dlm_controld's cluster needs, whoever loaded it.
DLM_NEEDS = ("dlm", "configfs")
# Modules that serve other subsystems too (GFS2, lvmlockd, nvmet...): one that
# was loaded before the first load stays.  The ocfs2 modules serve only this
# stack, and mkfs.ocfs2 and mount.ocfs2 load them on demand before any start:
# unused at unload, they go, whoever loaded them.
SHARED_MODULES = ("dlm", "configfs")
# What a cluster's configfs items, its heartbeat regions and the o2 DLM hold.
# Once the cluster is gone nothing should (measured on 6.1: the regions'
# references go inside their rmdir), so unload waits a bounded time for a
# reference that is still let go of, then names the driver it stays in.
CLUSTER_MODULES = ("ocfs2_stack_o2cb", "ocfs2_dlm", "ocfs2_nodemanager", STACKGLUE_MODULE)
RELEASE_TIMEOUT = 10.0  # seconds, for the whole unload
RELEASE_POLL = 0.2
# What the last unload had to leave loaded, for status (one name a line).
LEFT_LOADED_FILE = "/run/o2cb/left-loaded"


def default_refusal(stack: str, generation: Generation) -> str:
    if generation is Generation.LEGACY:
        return (
            f"cluster stack {stack} is not supported by this kernel's ocfs2 drivers"
            " (ocfs2 1.2 runs only the o2cb stack)"
        )
    return f"cluster stack {stack} is not supported on this kernel"


@dataclass(frozen=True)
class DriverSet:
    """Which drivers a stack needs, and on which kernels it runs."""

    plugin: str  # stack glue plugin: "o2cb" or "user"
    heartbeat_method: str  # 2007-era heartbeat_mode: "disk" or "user"
    generations: frozenset[Generation]
    refusal: Callable[[Generation], str] | None = None
    extra_filesystems: tuple[str, ...] = field(default=())  # shown by status


class Drivers:
    """The drivers of one stack."""

    def __init__(self, context: Context, stack: str, needs: DriverSet) -> None:
        self.context = context
        self.system = context.system
        self.kernel = context.kernel
        self.steps = context.steps
        self.stack = stack
        self.needs = needs
        self.release_deadline: float | None = None  # of the wait for held drivers
        self.held: list[str] = []  # cluster drivers still held once the wait ended

    @property
    def configfs(self) -> Configfs:
        return self.kernel.configfs()

    # -- kernel generation ---------------------------------------------------

    def unsupported_reason(self, generation: Generation) -> str:
        if self.needs.refusal is not None:
            return self.needs.refusal(generation)
        return default_refusal(self.stack, generation)

    def probe_generation(self) -> Generation:
        """Which driver family runs here, loading the stack glue if it is a module."""
        if not self.kernel.has_stackglue():
            # A quiet try: on ocfs2 1.2 and 2007-era kernels this module does not exist.
            self.steps.add(None, self._try_stackglue)
        return self.kernel.generation()

    def _try_stackglue(self) -> None:
        tried = self.kernel.try_modprobe(STACKGLUE_MODULE)
        if not tried.ok and "not found" not in tried.reason:
            # Only a module that does not exist means an older kernel.
            raise StepError(f'Unable to load module "{STACKGLUE_MODULE}": {tried.reason}')

    def require_supported(self) -> Generation:
        """Refuse a kernel this stack cannot run on.

        A kernel with neither the stack glue nor a node manager in configfs
        yet may be a 2007-era one that shows cluster/heartbeat_mode only
        once its drivers are loaded: load() decides that case afterwards.
        Whatever the probe loaded is undone with the run.
        """
        generation = self.probe_generation()
        if generation in self.needs.generations or self._undecided(generation):
            return generation
        raise UnsupportedError(self.unsupported_reason(generation))

    def _undecided(self, generation: Generation) -> bool:
        return (
            generation is Generation.LEGACY
            and Generation.HEARTBEAT_MODE in self.needs.generations
            and not self.configfs.available()
        )

    # -- load ----------------------------------------------------------------

    def load(self) -> None:
        """Load the drivers and mount the filesystems this stack needs."""
        baseline.record(self.system, self.kernel, self.steps,
                        [self.kernel.configfs_mountpoint(), DLMFS_MOUNTPOINT])
        # Asked when carried out: restart's stop may write the record in this run.
        self.steps.add(None, self._forget_left_loaded)
        generation = self.require_supported()
        self.mount_debugfs()
        self.load_filesystem("configfs")
        self.mount_filesystem("configfs", self.kernel.configfs_mountpoint())
        if generation is Generation.STACKGLUE:
            self.load_plugin()
        self.load_filesystem("ocfs2_dlmfs")
        self.mount_filesystem("ocfs2_dlmfs", DLMFS_MOUNTPOINT)
        # 2007-era kernels show cluster/heartbeat_mode only now, with the node manager loaded.
        if self.kernel.generation() is Generation.HEARTBEAT_MODE:
            self.select_heartbeat_method()
        if self.kernel.generation() not in self.needs.generations:
            raise UnsupportedError(self.unsupported_reason(self.kernel.generation()))

    def mount_debugfs(self) -> None:
        """Mount debugfs where the kernel offers it, as the reference does.

        o2hbmonitor reads the heartbeat there.  It is a kernel-wide facility
        others use too, so unload leaves it mounted.
        """
        if self.system.is_dir(DEBUGFS_MOUNTPOINT) and self.kernel.has_filesystem("debugfs"):
            self.mount_filesystem("debugfs", DEBUGFS_MOUNTPOINT, device="nodev")

    def load_filesystem(self, fstype: str) -> None:
        if not self.kernel.has_filesystem(fstype):
            self.steps.add(f'Loading filesystem "{fstype}"', lambda: self.kernel.modprobe(fstype))

    def mount_filesystem(self, fstype: str, mountpoint: str, device: str | None = None) -> None:
        if self.kernel.mounted_fstype(mountpoint) == fstype:
            return
        if not self.system.is_dir(mountpoint):
            self.steps.add(f"Creating directory '{mountpoint}'",
                           lambda: self._create_directory(mountpoint))

        def mount() -> None:
            self.kernel.mount(fstype, mountpoint, device)

        self.steps.add(f"Mounting {fstype} filesystem at {mountpoint}", mount)

    def _create_directory(self, mountpoint: str) -> None:
        try:
            self.system.mkdir(mountpoint, parents=True)
        except OSError as error:
            raise StepError(f"Unable to create directory '{mountpoint}': "
                            f"{error.strerror}") from None
        self.system.record_undo(f"creating directory '{mountpoint}'",
                                lambda: self.system.rmdir(mountpoint))

    def load_plugin(self) -> None:
        plugin = self.needs.plugin
        if plugin not in self.kernel.loaded_plugins():
            self.steps.add(f'Loading stack plugin "{plugin}"',
                           lambda: self.kernel.modprobe(f"ocfs2_stack_{plugin}"))

    def select_heartbeat_method(self) -> None:
        """2007-era kernels: load this stack's heartbeat driver and make it the mode."""
        top = self.configfs.top
        method = self.needs.heartbeat_method
        if method not in (top.read("heartbeat_available_modes") or "").split():
            self.steps.add(f'Loading heartbeat driver "ocfs2_{method}_heartbeat"',
                           lambda: self.kernel.modprobe(f"ocfs2_{method}_heartbeat"))
        if top.read("heartbeat_mode") != method:
            self.steps.add(f'Setting heartbeat mode "{method}"', self._set_heartbeat_mode)

    def _set_heartbeat_mode(self) -> None:
        top = self.configfs.top
        previous = top.read("heartbeat_mode")
        top.write("heartbeat_mode", self.needs.heartbeat_method)
        if previous:
            self.system.record_undo(
                "setting the heartbeat mode", lambda: top.write("heartbeat_mode", previous)
            )

    def set_cluster_stack(self) -> None:
        """Name this stack in /sys/fs/ocfs2/cluster_stack (stack glue kernels).

        The step is shown on every online, as the reference shows it; the
        file is written only when it names another stack.
        """
        if self.kernel.has_stackglue():
            self.steps.add(f'Setting cluster stack "{self.stack}"', self._write_cluster_stack)

    def _write_cluster_stack(self) -> None:
        previous = self.kernel.cluster_stack()
        if previous == self.stack:
            return
        try:
            self.system.write_attribute(CLUSTER_STACK_FILE, self.stack)
        except OSError as error:
            raise StepError(f"Unable to set cluster stack {self.stack}: {error.strerror}") from None
        if previous:
            self.system.record_undo(
                "setting the cluster stack",
                lambda: self.system.write_attribute(CLUSTER_STACK_FILE, previous),
            )

    def unload_ocfs2(self) -> None:
        """The filesystem driver goes with the cluster, unless a volume uses it."""
        if self.kernel.module("ocfs2") is not None:
            self.unload_module("ocfs2")

    # -- unload --------------------------------------------------------------

    def refuse_in_use(self, title: str | None) -> None:
        """The first step of offline and unload, whatever the stack (volumes.py)."""
        volumes.refuse_in_use(self.system, self.kernel, self.steps, title)

    def check_no_cluster(self) -> None:
        """Refuse to unload drivers while a cluster is online."""
        clusters = self.configfs.clusters()
        if clusters:
            raise StepError(
                f"Unable to unload modules as O2CB cluster {clusters[0].name} is still online"
            )

    def unload(self) -> None:
        """Take away the stack's drivers, in reverse, leaving what others use."""
        before = baseline.read(self.system)
        keeper = volumes.dlm_keeper(self.system, self.kernel)
        if keeper:
            self.system.probe(f"{keeper}: keeping {' and '.join(DLM_NEEDS)}")
        ours = [name for name in (*STACK_MODULES, "configfs")
                if self.kernel.module(name) is not None
                and not (name in SHARED_MODULES and before.had_module(name))
                and not (keeper and name in DLM_NEEDS)]
        self.unmount_filesystem("ocfs2_dlmfs", DLMFS_MOUNTPOINT, before)
        for name in STACK_MODULES:
            if name in ours:
                self.unload_module(name)
        if keeper:
            return  # what the DLM keeps may still be ours: the record says so to the next unload
        self.steps.add(None, lambda: self.name_held(ours))
        self.release_configfs(before, unload="configfs" in ours)
        if self.system.exists(baseline.BASELINE_FILE):
            self.steps.add(None, lambda: baseline.forget(self.system))

    def unmount_filesystem(self, fstype: str, mountpoint: str, before: baseline.Baseline) -> None:
        mounted = self.kernel.mounted_fstype(mountpoint) == fstype
        if mounted and not before.had_mount(mountpoint):
            self.steps.add(f"Unmounting {fstype} filesystem",
                           lambda: self.kernel.umount(fstype, mountpoint))

    def unload_module(self, name: str) -> None:
        """Unload a module this tool loaded, once nothing uses it.

        Whether something still does is asked when the step is carried out:
        the references a control daemon's open device or a removed configfs
        item held go only then, and the plan cannot count every one of them.
        A module `modprobe -r` already took along is no longer loaded then.
        """
        self.steps.add(f'Unloading module "{name}"', lambda: self.kernel.remove_module(name),
                       needed=lambda: self.unused(name))

    def unused(self, name: str) -> bool:
        """Loaded, and neither another module nor anything else holds it.

        A cluster driver that only something other than a module still
        holds is waited for, within RELEASE_TIMEOUT for the whole unload.
        """
        module = self.kernel.module(name)
        if (module is not None and module.in_use and name in CLUSTER_MODULES
                and not self.context.planner.planning):  # the plan's model cannot tell
            module = self._wait_for_release(name)
            if module is not None and module.in_use and not module.users:
                self.held.append(name)
        if module is not None and module.in_use:
            self.system.probe(f"module {name} is in use; leaving it loaded")
        return module is not None and not module.in_use

    def _wait_for_release(self, name: str) -> Module | None:
        module = self.kernel.module(name)
        if self.release_deadline is None:
            self.release_deadline = time.monotonic() + RELEASE_TIMEOUT
        while (module is not None and module.in_use and not module.users
               and time.monotonic() < self.release_deadline):
            time.sleep(RELEASE_POLL)
            module = self.kernel.module(name)
        return module

    def name_held(self, ours: list[str]) -> None:
        """One line for the drivers the cluster left held, and a record for status."""
        if self.context.planner.planning:
            return  # what stays is known only once the drivers have been unloaded
        left = [name for name in ours
                if name in CLUSTER_MODULES and self.kernel.module(name) is not None]
        if not self.held or not left:
            self._forget_left_loaded()
            return
        held = ", ".join(self.held)
        self.context.report.problem(
            f"o2cb: {held} still in use {RELEASE_TIMEOUT:g} s after the cluster stopped;"
            f" left loaded: {', '.join(left)}"
        )
        try:
            self.system.mkdir("/run/o2cb", parents=True)
            self.system.replace_file(LEFT_LOADED_FILE, "".join(f"{name}\n" for name in left))
        except OSError as error:
            self.system.probe(f"cannot record {LEFT_LOADED_FILE}: {error.strerror}")

    def release_configfs(self, before: baseline.Baseline, unload: bool) -> None:
        """Unmount and unload configfs unless someone else still uses it."""
        mountpoint = self.kernel.configfs_mountpoint()
        others = set(self.system.listdir(mountpoint)) - OWN_CONFIGFS_ENTRIES
        if others:
            self.system.probe(f"configfs is in use by {', '.join(sorted(others))}; keeping it")
            return
        self.unmount_filesystem("configfs", mountpoint, before)
        if unload:
            self.unload_module("configfs")

    # -- status --------------------------------------------------------------

    def status(self, report: StatusReport) -> None:
        """configfs, the stack glue and plugin or heartbeat driver, ocfs2_dlmfs."""
        self.status_filesystem(report, "configfs", self.kernel.configfs_mountpoint())
        plugin = self.needs.plugin
        if self.kernel.has_stackglue():
            report.add("stackglue_loaded", True, "Stack glue driver: Loaded")
            loaded = plugin in self.kernel.loaded_plugins()
            report.add(
                "plugin", {"name": plugin, "loaded": loaded},
                f'Stack plugin "{plugin}": {loaded_word(loaded)}',
            )
        elif self.kernel.generation() is Generation.HEARTBEAT_MODE:
            method = self.needs.heartbeat_method
            top = self.configfs.top
            loaded = method in (top.read("heartbeat_available_modes") or "").split()
            report.add(
                "heartbeat_driver", {"name": f"ocfs2_{method}_heartbeat", "loaded": loaded},
                f'Heartbeat driver "ocfs2_{method}_heartbeat": {loaded_word(loaded)}',
            )
            current = top.read("heartbeat_mode") or ""
            report.add("heartbeat_method", current, f"Heartbeat method: {current or 'none'}")
        elif plugin != "o2cb":
            report.add("stackglue_loaded", False, "Stack glue driver: Not loaded")
        self.status_filesystem(report, "ocfs2_dlmfs", DLMFS_MOUNTPOINT)
        for fstype in self.needs.extra_filesystems:
            loaded = self.kernel.has_filesystem(fstype)
            report.add(f"{fstype}_driver", loaded, f'Driver for "{fstype}": {loaded_word(loaded)}')

    def _forget_left_loaded(self) -> None:
        if self.system.exists(LEFT_LOADED_FILE):
            self.system.remove_file(LEFT_LOADED_FILE)

    def status_left_loaded(self, report: StatusReport) -> None:
        """The drivers the last stop had to leave, while they are still loaded."""
        recorded = (self.system.read_optional(LEFT_LOADED_FILE) or "").split()
        left = [name for name in recorded if self.kernel.module(name) is not None]
        if left:
            report.add("held_after_stop", left,
                       f"Drivers the last stop left loaded: {', '.join(left)}")

    def status_filesystem(self, report: StatusReport, fstype: str, mountpoint: str) -> None:
        loaded = self.kernel.has_filesystem(fstype)
        report.add(f"{fstype}_loaded", loaded, f'Driver for "{fstype}": {loaded_word(loaded)}')
        if loaded:
            mounted = self.kernel.mounted_fstype(mountpoint) == fstype
            report.add(
                f"{fstype}_mounted", mounted,
                f'Filesystem "{fstype}": {"Mounted" if mounted else "Not mounted"}',
            )

    def status_debugfs(self, report: StatusReport) -> None:
        debugfs = self.kernel.mounted_fstype(DEBUGFS_MOUNTPOINT) == "debugfs"
        report.add(
            "debugfs", debugfs,
            f"Debug file system at {DEBUGFS_MOUNTPOINT}: {'mounted' if debugfs else 'not mounted'}",
        )
