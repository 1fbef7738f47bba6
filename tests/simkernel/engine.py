"""The simulated kernel's state and the behaviour of its fake commands.

A simulated machine is a directory used as the root (``o2cb --root DIR``).
Everything the tool reads is a plain file under it, laid out like the real
pseudo filesystems (doc/kernel.md):

- ``proc/filesystems``, ``proc/modules``, ``proc/mounts`` in the kernel's own
  formats, ``proc/sys/kernel/hostname``;
- ``sys/fs/ocfs2/*`` while ocfs2_stackglue is there;
- the configfs tree, visible at its mount point while configfs is mounted and
  kept in ``.simkernel/configfs`` while it is not;
- ``.simkernel/state.json``: what the files cannot say (profile, loaded
  modules in load order, mounts, which node attributes were set, which
  heartbeat regions are held by a mounted volume, busy mount points).

This module only uses the standard library: the fake ``modprobe``, ``mount``
and ``umount`` in ``bin/`` import it from a bare ``python3``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import corosync, globalhb

KERNEL_VERSION = "6.1.0-56-amd64"
STATE_DIR = ".simkernel"
STATE_FILE = f"{STATE_DIR}/state.json"
HIDDEN_CONFIGFS = f"{STATE_DIR}/configfs"
SHADOW_DIR = f"{STATE_DIR}/shadow"
STACKGLUE_DIR = "sys/fs/ocfs2"
DLM_SYSFS = "sys/kernel/dlm"  # the dlm module's kset: one directory per lockspace
SYSFS_CONFIG = "sys/kernel/config"  # where configfs shows itself in sysfs, once loaded

# util-linux 2.38 (Debian 12) adds this line after a failed mount(2).
MOUNT_HINT = "       dmesg(1) may have more information after failed mount system call."

# Filesystems every kernel has, before any ocfs2 module is loaded.
BASE_FILESYSTEMS = [
    ("nodev", "sysfs"),
    ("nodev", "tmpfs"),
    ("nodev", "proc"),
    ("nodev", "devtmpfs"),
    ("", "ext4"),
]


class CommandError(Exception):
    """A fake command's failure: the message for stderr and the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ModuleSpec:
    name: str
    deps: tuple[str, ...] = ()
    size: int = 16384


def _catalogue(*specs: ModuleSpec) -> dict[str, ModuleSpec]:
    return {spec.name: spec for spec in specs}


_MODERN = _catalogue(
    ModuleSpec("configfs", (), 57344),
    ModuleSpec("ocfs2_stackglue", (), 24576),
    ModuleSpec("ocfs2_nodemanager", ("configfs",), 225280),
    ModuleSpec("ocfs2_dlm", ("ocfs2_nodemanager",), 192512),
    ModuleSpec("ocfs2_stack_o2cb", ("ocfs2_dlm", "ocfs2_nodemanager", "ocfs2_stackglue"), 16384),
    ModuleSpec("ocfs2_dlmfs", ("ocfs2_stackglue", "ocfs2_nodemanager"), 32768),
    ModuleSpec("dlm", ("configfs",), 262144),
    ModuleSpec("ocfs2_stack_user", ("dlm", "ocfs2_stackglue"), 24576),
    ModuleSpec("ocfs2", ("ocfs2_stackglue",), 1736704),
)

_LEGACY12 = _catalogue(
    ModuleSpec("configfs", (), 57344),
    ModuleSpec("ocfs2_nodemanager", ("configfs",), 225280),
    ModuleSpec("ocfs2_dlm", ("ocfs2_nodemanager",), 192512),
    ModuleSpec("ocfs2_dlmfs", ("ocfs2_dlm", "ocfs2_nodemanager"), 32768),
    ModuleSpec("ocfs2", ("ocfs2_dlm", "ocfs2_nodemanager"), 1736704),
)

_HBMODE2007 = dict(
    _LEGACY12,
    **_catalogue(
        ModuleSpec("ocfs2_disk_heartbeat", ("ocfs2_nodemanager",), 24576),
        ModuleSpec("ocfs2_user_heartbeat", ("ocfs2_nodemanager",), 16384),
    ),
)


@dataclass(frozen=True)
class Profile:
    """A kind of kernel: which drivers exist, which are built in, what o2nm offers."""

    name: str
    modules: dict[str, ModuleSpec]
    builtin: tuple[str, ...] = ()
    stackglue: bool = True
    heartbeat_mode: bool = False
    legacy_threshold: bool = False
    cluster_attributes: tuple[tuple[str, str], ...] = ()
    heartbeat_attributes: tuple[tuple[str, str], ...] = ()


_TIMEOUTS = (
    ("idle_timeout_ms", "30000"),
    ("keepalive_delay_ms", "2000"),
    ("reconnect_delay_ms", "2000"),
)

PROFILES: dict[str, Profile] = {
    "modern": Profile(
        "modern",
        _MODERN,
        cluster_attributes=(*_TIMEOUTS, ("fence_method", "reset")),
        heartbeat_attributes=(("dead_threshold", "31"), ("mode", "local")),
    ),
    "builtin": Profile(
        "builtin",
        _MODERN,
        builtin=(
            "configfs",
            "ocfs2_stackglue",
            "ocfs2_nodemanager",
            "ocfs2_dlm",
            "ocfs2_stack_o2cb",
            "ocfs2_dlmfs",
        ),
        cluster_attributes=(*_TIMEOUTS, ("fence_method", "reset")),
        heartbeat_attributes=(("dead_threshold", "31"), ("mode", "local")),
    ),
    # ocfs2 1.2 drivers: no stack glue, threshold in /proc, no o2nm timeouts.
    "legacy12": Profile("legacy12", _LEGACY12, stackglue=False, legacy_threshold=True),
    # 2007-era: cluster/heartbeat_mode at the top of configfs, timeouts in o2nm.
    "hbmode2007": Profile(
        "hbmode2007",
        _HBMODE2007,
        stackglue=False,
        heartbeat_mode=True,
        cluster_attributes=_TIMEOUTS,
        heartbeat_attributes=(("dead_threshold", "31"),),
    ),
}

NODE_ATTRIBUTES = (("num", "0"), ("ipv4_address", "0.0.0.0"), ("ipv4_port", "0"), ("local", "0"))
REGION_ATTRIBUTES = (
    ("block_bytes", "0"),
    ("start_block", "0"),
    ("blocks", "0"),
    ("dev", ""),
    ("pid", ""),
)


def _escape(path: str) -> str:
    return path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011")


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def read_value(path: Path) -> str:
    return path.read_text(encoding="utf-8").rstrip("\n")


class Kernel:
    """One simulated machine: load its state, change it, save it, render /proc."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        state_path = self.root / STATE_FILE
        if not state_path.exists():
            raise CommandError(f"simkernel: {self.root} is not a simulated root (no {STATE_FILE})")
        self.state: dict[str, Any] = json.loads(state_path.read_text(encoding="utf-8"))
        self.profile = PROFILES[self.state["profile"]]

    # -- creation and persistence -------------------------------------------

    @classmethod
    def create(
        cls,
        root: Path | str,
        profile: str = "modern",
        hostname: str = "node1",
        config_mount: str = "/sys/kernel/config",
        recover_callbacks: bool = True,
    ) -> Kernel:
        """``recover_callbacks``: the stack glue shows dlm_recover_callback_support
        (Linux 4.x on); without it, pcmk needs ocfs2_controld."""
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        root = Path(root)
        if (root / STATE_FILE).exists():
            raise ValueError(f"{root} already holds a simulated kernel")
        for directory in ("proc/fs", "proc/sys/kernel", "sys/fs", "dev",
                          "etc/default", HIDDEN_CONFIGFS, SHADOW_DIR):
            (root / directory).mkdir(parents=True, exist_ok=True)
        if config_mount.strip("/") == SYSFS_CONFIG:
            # configfs makes its mount point in sysfs when it loads (sysfs_create_mount_point).
            (root / "sys/kernel").mkdir()
        else:
            # A kernel whose configfs has no place in sysfs: /config, as packages create it.
            (root / config_mount.lstrip("/")).mkdir(parents=True, exist_ok=True)
        write_file(root / "proc/sys/kernel/hostname", f"{hostname}\n")
        from .o2net import HEADER, TCP  # a kernel always has its TCP table, if empty

        write_file(root / TCP, HEADER)
        state: dict[str, Any] = {
            "profile": profile,
            "kernel_version": KERNEL_VERSION,
            "config_mount": "/" + config_mount.strip("/"),
            "loaded": [],
            "filesystems": [list(entry) for entry in BASE_FILESYSTEMS],
            "plugins": [],
            "mounts": [],
            "configfs_at": None,
            "node_set": {},
            "held_regions": [],
            "busy": [],
            "shadows": {},
            "recover_callbacks": recover_callbacks,
        }
        write_file(root / STATE_FILE, json.dumps(state, indent=1))
        kernel = cls(root)
        for name in kernel.profile.builtin:
            kernel._apply_load_effects(name)
        kernel.save()
        return kernel

    def save(self) -> None:
        """Write the state file and regenerate proc/modules, proc/mounts, proc/filesystems."""
        write_file(self.root / STATE_FILE, json.dumps(self.state, indent=1))
        write_file(self.root / "proc/modules", self.render_modules())
        write_file(self.root / "proc/mounts", self.render_mounts())
        write_file(
            self.root / "proc/filesystems",
            "".join(f"{nodev}\t{name}\n" for nodev, name in self.state["filesystems"]),
        )

    # -- modules -------------------------------------------------------------

    @property
    def loaded(self) -> list[str]:
        return list(self.state["loaded"])

    @property
    def builtin(self) -> tuple[str, ...]:
        return self.profile.builtin

    def present(self, name: str) -> bool:
        return name in self.state["loaded"] or name in self.builtin

    def dependents(self, name: str) -> list[str]:
        """Loaded modules that need ``name``, newest first (the users column)."""
        return [
            other
            for other in reversed(self.state["loaded"])
            if name in self.profile.modules[other].deps
        ]

    def holders(self, name: str) -> int:
        """References that are not modules: mounts, configfs items, pins (SimKernel.pin)."""
        return self._holders(name) + self.state.get("pins", {}).get(name, 0)

    def _holders(self, name: str) -> int:
        if name == "configfs":
            return 1 if self.fstype_mounts("configfs") else 0
        if name == "ocfs2_dlmfs":
            return len(self.fstype_mounts("ocfs2_dlmfs"))
        if name == "ocfs2":
            return len(self.fstype_mounts("ocfs2"))
        if name == "ocfs2_nodemanager":
            # configfs's mkdir pins the subsystem's module and the item's: o2nm twice.
            return 2 * len(self.configfs_items())
        if name == "dlm":
            # Each lockspace holds the module, and so does dlm_controld's cluster item.
            return len(self.lockspaces()) + (1 if self.has_dlm_cluster() else 0)
        return 0

    def refcount(self, name: str) -> int:
        return len(self.dependents(name)) + self.holders(name)

    def render_modules(self) -> str:
        lines = []
        for name in reversed(self.state["loaded"]):
            spec = self.profile.modules[name]
            users = self.dependents(name)
            column = "".join(f"{user}," for user in users) if users else "-"
            lines.append(
                f"{name} {spec.size} {self.refcount(name)} {column} Live 0x0000000000000000\n"
            )
        return "".join(lines)

    def spec(self, name: str) -> ModuleSpec:
        """The module as this kernel has it; modprobe's error when it has none."""
        spec = self.profile.modules.get(name)
        if spec is None:
            raise CommandError(
                f"modprobe: FATAL: Module {name} not found in directory "
                f"/lib/modules/{self.state['kernel_version']}"
            )
        return spec

    def modprobe(self, name: str) -> None:
        name = name.replace("-", "_")
        if name in self.builtin or name in self.state["loaded"]:
            return
        for dep in self.spec(name).deps:
            self.modprobe(dep)
        self.state["loaded"].append(name)
        self._apply_load_effects(name)

    def depends(self, name: str, lines: list[str]) -> None:
        """Append what ``modprobe --show-depends`` prints for ``name``, dependencies first."""
        if name in self.builtin:
            lines.append(f"builtin {name}")
            return
        for dep in self.spec(name).deps:
            self.depends(dep, lines)
        line = f"insmod /lib/modules/{self.state['kernel_version']}/kernel/fs/{name}.ko "
        if line not in lines:
            lines.append(line)

    def remove(self, name: str, first: bool = True) -> None:
        """``modprobe -r``: the module, then each dependency nothing uses any more."""
        name = name.replace("-", "_")
        if name in self.builtin:
            if first:
                raise CommandError(f"modprobe: FATAL: Module {name} is builtin.")
            return
        if name not in self.state["loaded"]:
            if first:
                raise CommandError(f"modprobe: FATAL: Module {name} is not in kernel.")
            return
        if self.refcount(name) > 0:
            if first:
                raise CommandError(f"modprobe: FATAL: Module {name} is in use.")
            return
        self._apply_unload_effects(name)
        self.state["loaded"].remove(name)
        for dep in self.profile.modules[name].deps:
            self.remove(dep, first=False)

    def _add_filesystem(self, name: str, nodev: bool = True) -> None:
        self.state["filesystems"].append(["nodev" if nodev else "", name])

    def _remove_filesystem(self, name: str) -> None:
        self.state["filesystems"] = [e for e in self.state["filesystems"] if e[1] != name]

    def _write_plugins(self) -> None:
        text = "".join(f"{plugin}\n" for plugin in self.state["plugins"])
        write_file(self.root / STACKGLUE_DIR / "loaded_cluster_plugins", text)

    def _apply_load_effects(self, name: str) -> None:
        glue = self.root / STACKGLUE_DIR
        if name == "configfs":
            self._add_filesystem("configfs")
            if self.state["config_mount"] == f"/{SYSFS_CONFIG}":
                (self.root / SYSFS_CONFIG).mkdir(exist_ok=True)
        elif name == "ocfs2_stackglue":
            glue.mkdir(parents=True, exist_ok=True)
            write_file(glue / "cluster_stack", "o2cb\n")
            write_file(glue / "loaded_cluster_plugins", "")
            write_file(glue / "active_cluster_plugin", "\n")
            write_file(glue / "max_locking_protocol", "0.0\n")
            if self.state.get("recover_callbacks", True):
                write_file(glue / "dlm_recover_callback_support", "1\n")
            self.state["plugins"] = []
        elif name == "ocfs2_nodemanager":
            cluster = self.configfs_dir() / "cluster"
            cluster.mkdir()
            if self.profile.heartbeat_mode:
                write_file(cluster / "heartbeat_mode", "disk\n")
                write_file(cluster / "heartbeat_available_modes", "")
            if self.profile.legacy_threshold:
                write_file(self.root / "proc/fs/ocfs2_nodemanager/hb_dead_threshold", "7\n")
        elif name in ("ocfs2_disk_heartbeat", "ocfs2_user_heartbeat"):
            self._set_available_mode(name.split("_")[1], True)
        elif name == "ocfs2_stack_o2cb":
            self.state["plugins"].append("o2cb")
            self._write_plugins()
        elif name == "ocfs2_stack_user":
            self.state["plugins"].append("user")
            self._write_plugins()
            write_file(self.root / "dev/ocfs2_control", "")
        elif name == "ocfs2_dlmfs":
            self._add_filesystem("ocfs2_dlmfs")
        elif name == "dlm":
            (self.configfs_dir() / "dlm").mkdir()
            if (self.root / DLM_SYSFS).parent.is_dir():  # not on a kernel simulated without it
                (self.root / DLM_SYSFS).mkdir()
        elif name == "ocfs2":
            self._add_filesystem("ocfs2", nodev=False)
            if self.profile.stackglue:
                write_file(glue / "max_locking_protocol", "1.0\n")

    def _apply_unload_effects(self, name: str) -> None:
        glue = self.root / STACKGLUE_DIR
        if name == "configfs":
            self._remove_filesystem("configfs")
            if self.state["config_mount"] == f"/{SYSFS_CONFIG}":
                (self.root / SYSFS_CONFIG).rmdir()
        elif name == "ocfs2_stackglue":
            shutil.rmtree(glue, ignore_errors=True)
            self.state["plugins"] = []
        elif name == "ocfs2_nodemanager":
            shutil.rmtree(self.configfs_dir() / "cluster", ignore_errors=True)
            globalhb.forget_mode(self.state)
            legacy = self.root / "proc/fs/ocfs2_nodemanager"
            if legacy.exists():
                shutil.rmtree(legacy)
        elif name in ("ocfs2_disk_heartbeat", "ocfs2_user_heartbeat"):
            self._set_available_mode(name.split("_")[1], False)
        elif name in ("ocfs2_stack_o2cb", "ocfs2_stack_user"):
            plugin = "o2cb" if name == "ocfs2_stack_o2cb" else "user"
            self.state["plugins"] = [p for p in self.state["plugins"] if p != plugin]
            self._write_plugins()
            if plugin == "user":
                (self.root / "dev/ocfs2_control").unlink(missing_ok=True)
        elif name == "ocfs2_dlmfs":
            self._remove_filesystem("ocfs2_dlmfs")
        elif name == "dlm":
            shutil.rmtree(self.configfs_dir() / "dlm", ignore_errors=True)
            shutil.rmtree(self.root / DLM_SYSFS, ignore_errors=True)
        elif name == "ocfs2":
            self._remove_filesystem("ocfs2")
            if self.profile.stackglue and glue.exists():
                write_file(glue / "max_locking_protocol", "0.0\n")

    def _set_available_mode(self, mode: str, present: bool) -> None:
        path = self.configfs_dir() / "cluster/heartbeat_available_modes"
        modes = read_value(path).split() if path.exists() else []
        if present and mode not in modes:
            modes.append(mode)
        if not present and mode in modes:
            modes.remove(mode)
        write_file(path, "".join(f"{m}\n" for m in modes))

    def available_heartbeat_modes(self) -> list[str]:
        path = self.configfs_dir() / "cluster/heartbeat_available_modes"
        return read_value(path).split() if path.exists() else []

    # -- configfs ------------------------------------------------------------

    def configfs_dir(self) -> Path:
        """Where the configfs tree lives now: its mount point, or the hidden copy."""
        at = self.state["configfs_at"]
        return self.root / (at.lstrip("/") if at else HIDDEN_CONFIGFS)

    def configfs_items(self) -> list[str]:
        """Directories made by mkdir under cluster/ (clusters, nodes, regions)."""
        base = self.configfs_dir() / "cluster"
        items: list[str] = []
        if not base.is_dir():
            return items
        for cluster in sorted(p for p in base.iterdir() if p.is_dir()):
            items.append(cluster.name)
            for group in ("node", "heartbeat"):
                group_dir = cluster / group
                if group_dir.is_dir():
                    items.extend(
                        f"{cluster.name}/{group}/{child.name}"
                        for child in sorted(group_dir.iterdir())
                        if child.is_dir()
                    )
        return items

    def cluster_names(self) -> list[str]:
        base = self.configfs_dir() / "cluster"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir())

    def make_cluster_dir(self, name: str) -> Path:
        path = self.configfs_dir() / "cluster" / name
        path.mkdir()
        for attribute, value in self.profile.cluster_attributes:
            write_file(path / attribute, f"{value}\n")
        (path / "node").mkdir()
        (path / "heartbeat").mkdir()
        for attribute, value in self.profile.heartbeat_attributes:
            if attribute == "mode":
                value = globalhb.current_mode(self.state)
            write_file(path / "heartbeat" / attribute, f"{value}\n")
        return path

    def make_node_dir(self, cluster: str, node: str) -> Path:
        path = self.configfs_dir() / "cluster" / cluster / "node" / node
        path.mkdir()
        for attribute, value in NODE_ATTRIBUTES:
            write_file(path / attribute, f"{value}\n")
        self.state["node_set"][f"{cluster}/node/{node}"] = []
        return path

    def make_region_dir(self, cluster: str, uuid: str, held: bool = False) -> Path:
        path = self.configfs_dir() / "cluster" / cluster / "heartbeat" / uuid
        path.mkdir()
        for attribute, value in REGION_ATTRIBUTES:
            write_file(path / attribute, f"{value}\n")
        if held:
            write_file(path / "block_bytes", "4096\n")
            write_file(path / "blocks", "255\n")
            write_file(path / "start_block", "1536\n")
            write_file(path / "dev", "sdb\n")
            write_file(path / "pid", f"{os.getpid()}\n")
            self.state["held_regions"].append(f"{cluster}/heartbeat/{uuid}")
        return path

    def remove_item_dir(self, relative: str) -> None:
        """Remove a mkdir'd item (relative to cluster/) and its attribute files."""
        path = self.configfs_dir() / "cluster" / relative
        shutil.rmtree(path)
        self.state["node_set"] = {
            key: value
            for key, value in self.state["node_set"].items()
            if key != relative and not key.startswith(relative + "/")
        }
        self.state["held_regions"] = [
            r for r in self.state["held_regions"]
            if r != relative and not r.startswith(relative + "/")
        ]

    # -- the dlm: lockspaces and dlm_controld's cluster ------------------------

    def cluster_stack(self) -> str:
        path = self.root / STACKGLUE_DIR / "cluster_stack"
        return read_value(path) if path.exists() else ""

    def lockspaces(self) -> list[str]:
        base = self.root / DLM_SYSFS
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def add_lockspace(self, name: str) -> None:
        """A lockspace as dlm_new_lockspace shows it in sysfs (id, control, event_done)."""
        if not self.present("dlm"):
            raise CommandError(f"simkernel: no dlm module loaded for lockspace {name}")
        path = self.root / DLM_SYSFS / name
        path.mkdir()
        write_file(path / "id", f"{int(hashlib.md5(name.encode()).hexdigest()[:8], 16)}\n")
        write_file(path / "control", "")
        write_file(path / "event_done", "")

    def remove_lockspace(self, name: str) -> None:
        shutil.rmtree(self.root / DLM_SYSFS / name, ignore_errors=True)
        shutil.rmtree(self.configfs_dir() / "dlm" / "cluster" / "spaces" / name,
                      ignore_errors=True)

    def add_lockspace_member(self, name: str, nodeid: int) -> None:
        """A node in lockspace ``name``, as dlm_controld tells the kernel of it (configfs
        dlm/cluster/spaces/NAME/nodes/ID with nodeid and weight)."""
        node = self.configfs_dir() / "dlm" / "cluster" / "spaces" / name / "nodes" / str(nodeid)
        node.mkdir(parents=True)
        write_file(node / "nodeid", f"{nodeid}\n")
        write_file(node / "weight", "1\n")

    def remove_lockspace_member(self, name: str, nodeid: int) -> None:
        shutil.rmtree(self.configfs_dir() / "dlm" / "cluster" / "spaces" / name / "nodes"
                      / str(nodeid), ignore_errors=True)

    def make_dlm_cluster(self, name: str) -> None:
        """What dlm_controld builds in configfs at start: dlm/cluster with comms and spaces."""
        base = self.configfs_dir() / "dlm"
        if not base.is_dir():
            raise CommandError("simkernel: dlm is not loaded, no dlm/ in configfs")
        cluster = base / "cluster"
        cluster.mkdir()
        write_file(cluster / "cluster_name", f"{name}\n")
        (cluster / "comms").mkdir()
        (cluster / "spaces").mkdir()

    def has_dlm_cluster(self) -> bool:
        return (self.configfs_dir() / "dlm" / "cluster").is_dir()

    def remove_dlm_cluster(self) -> None:
        shutil.rmtree(self.configfs_dir() / "dlm" / "cluster", ignore_errors=True)

    # -- mounts --------------------------------------------------------------

    def relative(self, mountpoint: str) -> str:
        """A mount point given as a host path under root, or root-relative: root-relative."""
        path = Path(os.path.normpath(mountpoint))
        root = Path(os.path.normpath(self.root))
        try:
            inside = path.relative_to(root)
        except ValueError:
            return "/" + str(path).lstrip("/") if str(path) != "/" else "/"
        text = str(inside)
        return "/" if text == "." else "/" + text

    def fstype_mounts(self, fstype: str) -> list[dict[str, str]]:
        return [m for m in self.state["mounts"] if m["fstype"] == fstype]

    def find_mount(self, relative: str) -> dict[str, str] | None:
        return next((m for m in self.state["mounts"] if m["relative"] == relative), None)

    def render_mounts(self) -> str:
        return "".join(
            f"{_escape(m['device'])} {_escape(m['given'])} {m['fstype']} rw 0 0\n"
            for m in self.state["mounts"]
        )

    def filesystems(self) -> set[str]:
        return {name for _nodev, name in self.state["filesystems"]}

    def mount(self, fstype: str, device: str, mountpoint: str) -> None:
        relative = self.relative(mountpoint)
        target = self.root / relative.lstrip("/")
        if fstype not in self.filesystems():
            raise CommandError(
                f"mount: {mountpoint}: unknown filesystem type '{fstype}'.\n{MOUNT_HINT}", 32
            )
        if not target.is_dir():
            raise CommandError(
                f"mount: {mountpoint}: mount point does not exist.\n{MOUNT_HINT}", 32
            )
        existing = self.find_mount(relative)
        if existing is not None:
            raise CommandError(
                f"mount: {mountpoint}: {existing['device']} already mounted on {mountpoint}.\n"
                f"{MOUNT_HINT}",
                32,
            )
        if fstype == "configfs" and self.state["configfs_at"]:
            raise CommandError(
                f"mount: {mountpoint}: simkernel mounts configfs in one place only "
                f"(already at {self.state['configfs_at']})",
                32,
            )
        region, pins, lockspace = None, [], None
        if fstype == "ocfs2" and self.cluster_stack() == "pcmk":
            lockspace = self._join_lockspace(device)
        elif fstype == "ocfs2":
            info = globalhb.volume(self.state, device)
            if info and info["global"]:
                pins = self._join_global(device, mountpoint)
            else:
                region = self._join_heartbeat(device)
        self._shadow(relative, target)
        if fstype == "configfs":
            hidden = self.root / HIDDEN_CONFIGFS
            for child in hidden.iterdir():
                shutil.move(str(child), str(target / child.name))
            self.state["configfs_at"] = relative
        mount = {"device": device, "given": mountpoint, "relative": relative, "fstype": fstype}
        if region:
            mount["region"] = region
        if lockspace:
            mount["lockspace"] = lockspace
        if pins:
            mount["pins"] = pins
            self.state["held_regions"].extend(pins)
        self.state["mounts"].append(mount)
        self._update_active_plugin()

    def _join_heartbeat(self, device: str) -> str:
        clusters = self.cluster_names()
        if not clusters:
            raise CommandError(
                "mount.ocfs2: Unable to access cluster service while trying initialize cluster", 1
            )
        try:
            globalhb.refuse_local_join(self.state)
        except ValueError as error:
            raise CommandError(str(error), 1) from None
        info = globalhb.volume(self.state, device)
        uuid = info["uuid"] if info else hashlib.md5(device.encode()).hexdigest().upper()
        if (self.configfs_dir() / "cluster" / clusters[0] / "heartbeat" / uuid).exists():
            raise CommandError(f"mount.ocfs2: Device or resource busy while mounting {device}", 1)
        self.make_region_dir(clusters[0], uuid, held=True)
        return f"{clusters[0]}/heartbeat/{uuid}"

    def _join_lockspace(self, device: str) -> str:
        """A pcmk volume: the kernel's DLM joins a lockspace named by the volume's UUID.

        dlm_controld must have built its cluster in configfs (KERNEL.md, the
        userspace stack); ocfs2 uses no o2nm cluster and no heartbeat region.
        """
        if not self.has_dlm_cluster():
            raise CommandError(
                "mount.ocfs2: Unable to access cluster service while trying to join the group", 1
            )
        info = globalhb.volume(self.state, device)
        uuid = info["uuid"] if info else hashlib.md5(device.encode()).hexdigest().upper()
        if uuid in self.lockspaces():
            raise CommandError(f"mount.ocfs2: Device or resource busy while mounting {device}", 1)
        self.add_lockspace(uuid)
        state = corosync.read(self.root)
        self.add_lockspace_member(uuid, int(state["local"]) if state else 1)
        return str(uuid)

    def _join_global(self, device: str, mountpoint: str) -> list[str]:
        clusters = self.cluster_names()
        if not clusters:
            raise CommandError(
                "mount.ocfs2: Unable to access cluster service while trying initialize cluster", 1
            )
        try:
            return globalhb.join(
                self.state, self.configfs_dir() / "cluster" / clusters[0], device, mountpoint
            )
        except ValueError as error:
            raise CommandError(f"{error}", 1) from None

    def umount(self, mountpoint: str) -> None:
        relative = self.relative(mountpoint)
        mount = self.find_mount(relative)
        if mount is None:
            raise CommandError(f"umount: {mountpoint}: not mounted.", 32)
        target = self.root / relative.lstrip("/")
        if relative in self.state["busy"] or globalhb.holders(target):
            raise CommandError(f"umount: {mountpoint}: target is busy.", 32)
        if mount["fstype"] == "configfs":
            hidden = self.root / HIDDEN_CONFIGFS
            for child in target.iterdir():
                shutil.move(str(child), str(hidden / child.name))
            self.state["configfs_at"] = None
        else:
            for child in list(target.iterdir()):
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        self.state["held_regions"] = globalhb.release(
            self.state["held_regions"], mount.get("pins", [])
        )
        if mount.get("lockspace"):
            self.remove_lockspace(mount["lockspace"])
        region = mount.get("region")
        if region:
            self.state["held_regions"] = [r for r in self.state["held_regions"] if r != region]
            region_dir = self.configfs_dir() / "cluster" / region
            if region_dir.exists():
                self.remove_item_dir(region)
        self.state["mounts"].remove(mount)
        self._unshadow(relative, target)
        self._update_active_plugin()

    def _shadow(self, relative: str, target: Path) -> None:
        """Hide what the mount point held, as a mount covers it."""
        entries = list(target.iterdir())
        if not entries:
            return
        shadow = self.root / SHADOW_DIR / hashlib.md5(relative.encode()).hexdigest()
        shadow.mkdir(parents=True)
        for entry in entries:
            shutil.move(str(entry), str(shadow / entry.name))
        self.state["shadows"][relative] = str(shadow.relative_to(self.root))

    def _unshadow(self, relative: str, target: Path) -> None:
        shadow_rel = self.state["shadows"].pop(relative, None)
        if not shadow_rel:
            return
        shadow = self.root / shadow_rel
        for entry in shadow.iterdir():
            shutil.move(str(entry), str(target / entry.name))
        shadow.rmdir()

    def _update_active_plugin(self) -> None:
        glue = self.root / STACKGLUE_DIR
        if not glue.is_dir():
            return
        active = ""
        if self.fstype_mounts("ocfs2"):
            active = read_value(glue / "cluster_stack")
            active = "o2cb" if active == "o2cb" else "user"
        write_file(glue / "active_cluster_plugin", f"{active}\n")

    def stack_active(self) -> bool:
        return bool(self.fstype_mounts("ocfs2"))


# -- the fake commands --------------------------------------------------------


def _kernel_from_env() -> Kernel:
    root = os.environ.get("O2CB_ROOT")
    if not root:
        raise CommandError("simkernel: O2CB_ROOT is not set: which simulated root to change?")
    return Kernel(root)


def _run(program: str, action: Any, kind: str | None = None) -> int:
    from .faults import Injected, after, before

    try:
        kernel = _kernel_from_env()
        # The tool runs the fake command directly: its parent is the tool.
        fault = before(kernel.root, kind or program, os.getppid())
        action(kernel)
        kernel.save()
        after(fault, os.getppid())
        if fault == "raced":
            print(f"simkernel: {program}: already done by another process", file=sys.stderr)
            return 32
    except Injected as error:
        print(str(error), file=sys.stderr)
        return 1
    except CommandError as error:
        print(error.message, file=sys.stderr)
        return error.status
    return 0


def main_modprobe(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--show-depends" and not argv[1].startswith("-"):
        return _show_depends([argv[1]])
    if len(argv) >= 3 and set(argv[:2]) == {"--show-depends", "-a"}:
        return _show_depends(argv[2:])
    if len(argv) == 1 and not argv[0].startswith("-"):
        return _run("modprobe", lambda kernel: kernel.modprobe(argv[0]))
    if len(argv) == 2 and argv[0] in ("-r", "--remove") and not argv[1].startswith("-"):
        return _run("modprobe", lambda kernel: kernel.remove(argv[1]))
    print(
        "modprobe: ERROR: the simulated modprobe takes 'modprobe NAME' or 'modprobe -r NAME', "
        f"not {' '.join(argv) or '(no arguments)'}",
        file=sys.stderr,
    )
    return 1


def _show_depends(names: list[str]) -> int:
    """``modprobe --show-depends [-a] NAME...``: each NAME and what it needs, loaded or
    not, dependencies first; changes nothing.  As kmod does with -a, a module that
    does not exist is a warning, the others are still shown, and the exit status is 1."""
    try:
        kernel = _kernel_from_env()
    except CommandError as error:
        print(error.message, file=sys.stderr)
        return error.status
    status = 0
    for name in names:
        lines: list[str] = []
        try:
            kernel.depends(name.replace("-", "_"), lines)
        except CommandError as error:
            message = error.message.replace("FATAL", "WARNING") if len(names) > 1 else error.message
            print(message, file=sys.stderr)
            status = error.status
            continue
        print("".join(f"{line}\n" for line in lines), end="")
    return status


def main_mount(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "-t" and not any(a.startswith("-") for a in argv[1:]):
        fstype, device, mountpoint = argv[1:]
        return _run("mount", lambda kernel: kernel.mount(fstype, device, mountpoint))
    print(
        "mount: bad usage: the simulated mount takes 'mount -t FSTYPE DEVICE MOUNTPOINT', "
        f"not {' '.join(argv) or '(no arguments)'}",
        file=sys.stderr,
    )
    return 1


def main_umount(argv: list[str]) -> int:
    if len(argv) == 1 and not argv[0].startswith("-"):
        return _run("umount", lambda kernel: kernel.umount(argv[0]))
    print(
        "umount: bad usage: the simulated umount takes 'umount MOUNTPOINT', "
        f"not {' '.join(argv) or '(no arguments)'}",
        file=sys.stderr,
    )
    return 1
