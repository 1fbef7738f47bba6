"""Probes and actions on kernel drivers and mounts.

Whether a driver is there is read from /proc/filesystems, /proc/modules and
sysfs, never assumed: the same probes serve modules, built-in drivers, the
ocfs2 1.2 drivers and 2007-era heartbeat-mode kernels.  While a verb is
planned the same reads see the planned machine (model.py).
"""

from __future__ import annotations

from enum import Enum

from .changes import CommandResult
from .configfs import Configfs
from .errors import StepError
from .records import dataclass
from .system import System

STACKGLUE_DIR = "/sys/fs/ocfs2"
CLUSTER_STACK_FILE = f"{STACKGLUE_DIR}/cluster_stack"
LOADED_PLUGINS_FILE = f"{STACKGLUE_DIR}/loaded_cluster_plugins"
# Present where ocfs2 joins a userspace stack's lockspace through dlm_controld
# itself (the DLM's recovery callbacks), with no ocfs2_controld.
RECOVER_CALLBACK_FILE = f"{STACKGLUE_DIR}/dlm_recover_callback_support"
LEGACY_THRESHOLD_FILE = "/proc/fs/ocfs2_nodemanager/hb_dead_threshold"
DLMFS_MOUNTPOINT = "/dlm"
SYSFS_CONFIG = "/sys/kernel/config"  # configfs's mount point, made by configfs as it loads
LEGACY_CONFIGFS = "/config"  # where kernels without /sys/kernel/config mount it
# Modules that register a file system of their own name.
FILESYSTEM_MODULES = frozenset({"configfs", "ocfs2_dlmfs", "ocfs2"})
PLUGIN_PREFIX = "ocfs2_stack_"


class Generation(Enum):
    """Which family of ocfs2 drivers this kernel runs."""

    STACKGLUE = "stackglue"  # /sys/fs/ocfs2/cluster_stack: pluggable stacks
    HEARTBEAT_MODE = "heartbeat_mode"  # configfs cluster/heartbeat_mode (2007-era)
    LEGACY = "legacy"  # ocfs2 1.2 drivers: o2cb only


@dataclass(frozen=True)
class Module:
    name: str
    refcount: int
    users: tuple[str, ...]

    @property
    def in_use(self) -> bool:
        return self.refcount > 0 or bool(self.users)


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str


class Kernel:
    def __init__(self, system: System) -> None:
        self.system = system

    # -- filesystems and modules ---------------------------------------------

    def filesystems(self) -> set[str]:
        text = self.system.read_optional("/proc/filesystems") or ""
        return {line.split()[-1] for line in text.splitlines() if line.split()}

    def has_filesystem(self, name: str) -> bool:
        present = name in self.filesystems()
        self.system.probe(f"filesystem {name} in /proc/filesystems: {'yes' if present else 'no'}")
        return present

    def modules(self) -> dict[str, Module]:
        """Loaded modules from /proc/modules; built-in drivers never appear here."""
        modules: dict[str, Module] = {}
        text = self.system.read_optional("/proc/modules") or ""
        for line in text.splitlines():
            fields = line.split()
            if len(fields) < 4:
                continue
            refcount = int(fields[2]) if fields[2].isdigit() else 0
            users = tuple(user for user in fields[3].split(",") if user and user != "-")
            modules[fields[0]] = Module(fields[0], refcount, users)
        return modules

    def module(self, name: str) -> Module | None:
        return self.modules().get(name)

    def modprobe(self, name: str) -> None:
        result = self.try_modprobe(name)
        if not result.ok:
            raise StepError(f"Unable to load module \"{name}\": {result.reason}")

    def try_modprobe(self, name: str) -> CommandResult:
        """Load a module; the modules it brought in are undone together."""
        before = set(self.modules())
        result = self.system.run(["modprobe", name])
        added = [module for module in self.modules() if module not in before]
        if added:
            self.system.record_undo(
                f'loading module "{name}"', lambda: self.remove_unused(added)
            )
        return result

    def remove_unused(self, names: list[str]) -> None:
        """Unload those of ``names`` that are loaded and unused, users before what they use."""
        while True:
            loaded = self.modules()
            free = [name for name in names if name in loaded and not loaded[name].in_use]
            if not free:
                return
            for name in free:
                self.remove_module(name)

    def remove_module(self, name: str) -> None:
        result = self.system.run(["modprobe", "-r", name])
        if not result.ok:
            raise StepError(f"Unable to unload module \"{name}\": {result.reason}")

    # -- mounts --------------------------------------------------------------

    def mounts(self) -> list[Mount]:
        mounts = []
        text = self.system.read_optional("/proc/mounts") or ""
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 3:
                mounts.append(Mount(fields[0], _unescape(fields[1]), fields[2]))
        return mounts

    def _mountpoint_names(self, mountpoint: str) -> set[str]:
        """A mount point as /proc/mounts may list it: inside root, or from the host."""
        return {mountpoint, self.system.path(mountpoint)}

    def mounted_fstype(self, mountpoint: str) -> str | None:
        names = self._mountpoint_names(mountpoint)
        found = next((m.fstype for m in self.mounts() if m.mountpoint in names), None)
        self.system.probe(f"{mountpoint} mounted: {found or 'no'}")
        return found

    def mounts_of_type(self, fstype: str) -> list[Mount]:
        return [mount for mount in self.mounts() if mount.fstype == fstype]

    def mount(self, fstype: str, mountpoint: str, device: str | None = None) -> None:
        """Mount a pseudo filesystem; its device names it unless given."""
        was = self.mounted_fstype(mountpoint)
        result = self.system.run(
            ["mount", "-t", fstype, device or fstype, self.system.path(mountpoint)]
        )
        now = self.mounted_fstype(mountpoint)
        if not result.ok:
            if now == fstype and was != fstype:
                # Another process mounted it meanwhile: there, but not ours to undo.
                self.system.probe(f"{fstype} was mounted at {mountpoint} by someone else")
                return
            raise StepError(f"Unable to mount {fstype} filesystem: {result.reason}")
        if was != fstype and now == fstype:
            self.system.record_undo(
                f"mounting {fstype} at {mountpoint}", lambda: self._undo_mount(fstype, mountpoint)
            )

    def _undo_mount(self, fstype: str, mountpoint: str) -> None:
        if self.mounted_fstype(mountpoint) == fstype:
            self.umount(fstype, mountpoint)

    def umount(self, fstype: str, mountpoint: str) -> None:
        result = self.system.run(["umount", self.system.path(mountpoint)])
        if not result.ok:
            raise StepError(f"Unable to unmount {fstype} filesystem: {result.reason}")

    # -- configfs and stack glue ---------------------------------------------

    def configfs_mountpoint(self) -> str:
        """Where configfs belongs: /sys/kernel/config, or /config on older kernels."""
        return SYSFS_CONFIG if self.system.is_dir(SYSFS_CONFIG) else LEGACY_CONFIGFS

    def configfs(self) -> Configfs:
        return Configfs(self.system, self.configfs_mountpoint())

    def generation(self) -> Generation:
        if self.system.exists(CLUSTER_STACK_FILE):
            return Generation.STACKGLUE
        if self.system.exists(f"{self.configfs_mountpoint()}/cluster/heartbeat_mode"):
            return Generation.HEARTBEAT_MODE
        return Generation.LEGACY

    def has_stackglue(self) -> bool:
        present = self.system.exists(CLUSTER_STACK_FILE)
        self.system.probe(f"{CLUSTER_STACK_FILE} exists: {'yes' if present else 'no'}")
        return present

    def loaded_plugins(self) -> list[str]:
        return (self.system.read_optional(LOADED_PLUGINS_FILE) or "").split()

    def cluster_stack(self) -> str | None:
        return self.system.read_attribute(CLUSTER_STACK_FILE)


def _unescape(field: str) -> str:
    """/proc/mounts escapes spaces and the like as octal: \\040."""
    return (
        field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
        .replace("\\134", "\\")
    )
