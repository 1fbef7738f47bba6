"""Probes and actions on kernel drivers and mounts.

Whether a driver is there is read from /proc/filesystems, /proc/modules and
sysfs, never assumed: the same probes serve modules, built-in drivers, the
ocfs2 1.2 drivers and 2007-era heartbeat-mode kernels.

Every answer includes the system's overlay (overlay.py), so a plan sees
the modules and mounts it loads and mounts; each change says here what it
leaves (`leaves=`), which only planning enters there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import Enum

from .errors import StepError
from .system import CommandResult, System

STACKGLUE_DIR = "/sys/fs/ocfs2"
CLUSTER_STACK_FILE = f"{STACKGLUE_DIR}/cluster_stack"
LOADED_PLUGINS_FILE = f"{STACKGLUE_DIR}/loaded_cluster_plugins"
LEGACY_THRESHOLD_FILE = "/proc/fs/ocfs2_nodemanager/hb_dead_threshold"
DLMFS_MOUNTPOINT = "/dlm"
SYSFS_CONFIG = "/sys/kernel/config"  # configfs's mount point, made by configfs as it loads
# Modules that register a file system of their own name.
FILESYSTEM_MODULES = frozenset({"configfs", "ocfs2_dlmfs", "ocfs2"})
PLUGIN_PREFIX = "ocfs2_stack_"
# `modprobe --show-depends NAME` names NAME and each module it needs, one
# insmod line each, whether loaded or not; it fails as modprobe would for a
# module that does not exist.
_INSMOD = re.compile(r"^insmod\s+(\S+)", re.MULTILINE)


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
        names = {line.split()[-1] for line in text.splitlines() if line.split()}
        planned = self.system.overlay
        return (names | (planned.loaded_modules & FILESYSTEM_MODULES)) - planned.removed_modules

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
        return self._as_planned(modules) if self.system.overlay else modules

    def _as_planned(self, modules: dict[str, Module]) -> dict[str, Module]:
        """With the overlay's planned loads, removals and unmounts already made."""
        gone = self.system.overlay.removed_modules
        unmounted = [mount.fstype for mount in self._all_mounts()
                     if mount.mountpoint in self._planned_unmounts()]
        items = sum(1 for path in self.system.overlay.removed_paths if "/cluster/" in path)
        planned = {}
        for name, module in modules.items():
            if name in gone:
                continue
            users = tuple(user for user in module.users if user not in gone)
            held = module.refcount - (len(module.users) - len(users)) - unmounted.count(name)
            if name == "ocfs2_nodemanager":
                # configfs pins the subsystem's module and the item's (both
                # o2nm) for each item made by mkdir: 9 = 3 users + 2 x 3 items.
                held -= 2 * items
            planned[name] = Module(name, max(held, 0), users)
        for name in sorted(self.system.overlay.loaded_modules - set(planned)):
            planned[name] = Module(name, 0, ())
        return planned

    def module(self, name: str) -> Module | None:
        return self.modules().get(name)

    def is_loaded(self, name: str) -> bool:
        loaded = name in self.modules()
        self.system.probe(f"module {name} in /proc/modules: {'yes' if loaded else 'no'}")
        return loaded

    def modprobe(self, name: str) -> None:
        result = self.try_modprobe(name)
        if not result.ok:
            raise StepError(f"Unable to load module \"{name}\": {result.reason}")

    def try_modprobe(self, name: str) -> CommandResult:
        """Load a module; the modules it brought in are entered in the run's plan."""
        before = set(self.modules())
        result = self.system.run(
            ["modprobe", name], rehearsal=["modprobe", "--show-depends", name],
            leaves=lambda trial: self._loaded(name, trial),
        )
        added = [module for module in self.modules() if module not in before]
        if added:
            self.system.record_undo(
                f'loading module "{name}"', lambda: self.remove_unused(added)
            )
        return result

    def _loaded(self, name: str, trial: CommandResult) -> None:
        """What loading ``name`` leaves: the modules it needs that are not loaded, and
        the files they make."""
        needed = {os.path.basename(path).split(".", 1)[0].replace("-", "_")
                  for path in _INSMOD.findall(trial.stdout)}
        new = needed - set(self.modules())
        overlay = self.system.overlay
        overlay.load(new)
        if "configfs" in new and self.system.is_dir("/sys/kernel"):
            overlay.make_dir(SYSFS_CONFIG)  # configfs makes its mount point as it loads
        if "ocfs2_stackglue" in new:
            overlay.write(CLUSTER_STACK_FILE, "o2cb")
            overlay.write(LOADED_PLUGINS_FILE, "")
        mountpoint = self.configfs_mountpoint()
        if "ocfs2_nodemanager" in new and self.mounted_fstype(mountpoint) == "configfs":
            self._node_manager_shown(mountpoint)

    def _mounted(self, fstype: str, mountpoint: str) -> None:
        """What a mount leaves: configfs shows the node manager's cluster/ when it is there."""
        self.system.overlay.mount(mountpoint, fstype)
        if fstype == "configfs" and self._present("ocfs2_nodemanager"):
            self._node_manager_shown(mountpoint)

    def _node_manager_shown(self, mountpoint: str) -> None:
        """What the node manager shows in configfs once loaded and mounted.

        A 2007-era node manager adds cluster/heartbeat_mode, with no
        heartbeat driver yet: that family is the one without stack glue
        whose heartbeat drivers are modules of their own.  The mode it
        starts in is not known beforehand, so the plan sets it.
        """
        overlay = self.system.overlay
        overlay.make_dir(f"{mountpoint}/cluster")
        if self.system.exists(CLUSTER_STACK_FILE) or self.system.exists(
                f"{mountpoint}/cluster/heartbeat_mode"):
            return
        if self.system.run(["modprobe", "--show-depends", "ocfs2_disk_heartbeat"],
                           changes=False).ok:
            overlay.write(f"{mountpoint}/cluster/heartbeat_mode", "")
            overlay.write(f"{mountpoint}/cluster/heartbeat_available_modes", "")

    def _present(self, name: str) -> bool:
        """Loaded, or built into the kernel (which /proc/modules never shows)."""
        if name in self.modules():
            return True
        shown = self.system.run(["modprobe", "--show-depends", name], changes=False)
        return shown.ok and f"builtin {name}" in shown.stdout.splitlines()

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
        result = self.system.run(
            ["modprobe", "-r", name], leaves=lambda _: self._removed(name)
        )
        if not result.ok:
            raise StepError(f"Unable to unload module \"{name}\": {result.reason}")

    def _removed(self, name: str) -> None:
        """What `modprobe -r` leaves: the modules only ``name`` used go too."""
        used = [other for other, module in self.modules().items() if name in module.users]
        self.system.overlay.remove_module(name)
        if name == "configfs":
            self.system.overlay.remove(SYSFS_CONFIG)
        if name == "ocfs2_stackglue":
            self.system.overlay.remove(STACKGLUE_DIR)
        for other in used:
            module = self.modules().get(other)
            if module is not None and not module.in_use:
                self._removed(other)

    # -- mounts --------------------------------------------------------------

    def _planned_unmounts(self) -> set[str]:
        return {name for point in self.system.overlay.unmounted
                for name in self._mountpoint_names(point)}

    def mounts(self) -> list[Mount]:
        gone = self._planned_unmounts()
        mounts = [mount for mount in self._all_mounts() if mount.mountpoint not in gone]
        planned = self.system.overlay.mounted
        return mounts + [Mount(fstype, point, fstype) for point, fstype in planned.items()]

    def _all_mounts(self) -> list[Mount]:
        mounts = []
        text = self.system.read_optional("/proc/mounts") or ""
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 3:
                mounts.append(Mount(fields[0], _unescape(fields[1]), fields[2]))
        return mounts

    def _mountpoint_names(self, mountpoint: str) -> set[str]:
        """A mount point as /proc/mounts may list it: inside root, or from the host."""
        return {mountpoint, str(self.system.path(mountpoint))}

    def mounted_fstype(self, mountpoint: str) -> str | None:
        names = self._mountpoint_names(mountpoint)
        found = next((m.fstype for m in self.mounts() if m.mountpoint in names), None)
        self.system.probe(f"{mountpoint} mounted: {found or 'no'}")
        return found

    def mounts_of_type(self, fstype: str) -> list[Mount]:
        return [mount for mount in self.mounts() if mount.fstype == fstype]

    def mount(self, fstype: str, mountpoint: str, device: str | None = None) -> None:
        """Mount a pseudo filesystem; its device names it unless given."""
        target = str(self.system.path(mountpoint))
        was = self.mounted_fstype(mountpoint)
        result = self.system.run(
            ["mount", "-t", fstype, device or fstype, target],
            leaves=lambda _: self._mounted(fstype, mountpoint),
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
        result = self.system.run(
            ["umount", str(self.system.path(mountpoint))],
            leaves=lambda _: self.system.overlay.umount(mountpoint),
        )
        if not result.ok:
            raise StepError(f"Unable to unmount {fstype} filesystem: {result.reason}")

    # -- configfs and stack glue ---------------------------------------------

    def configfs_mountpoint(self) -> str:
        """Where configfs belongs: /sys/kernel/config, or /config on older kernels."""
        return SYSFS_CONFIG if self.system.is_dir(SYSFS_CONFIG) else "/config"

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
        plugins = (self.system.read_optional(LOADED_PLUGINS_FILE) or "").split()
        planned = self.system.overlay
        plugins += sorted(module.removeprefix(PLUGIN_PREFIX) for module in planned.loaded_modules
                          if module.startswith(PLUGIN_PREFIX))
        return [name for name in dict.fromkeys(plugins)
                if f"{PLUGIN_PREFIX}{name}" not in planned.removed_modules]

    def cluster_stack(self) -> str | None:
        return self.system.read_attribute(CLUSTER_STACK_FILE)


def _unescape(field: str) -> str:
    """/proc/mounts escapes spaces and the like as octal: \\040."""
    return (
        field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
        .replace("\\134", "\\")
    )
