"""The kernel model: what each planned change would leave on the machine.

Every prediction a plan makes of how the kernel (and the control daemons)
react lives here, and only here writes to the planned state (overlay.py).
It works on the files the rest of the package reads, so that kernel.py,
configfs.py and the parts read a planned machine exactly as they read the
real one:

- `modprobe NAME` loads what NAME needs that is not loaded yet: lines in
  /proc/modules (refcount 0), the file systems in /proc/filesystems, and
  the files modules make as they load (configfs its mount point, the stack
  glue /sys/fs/ocfs2, a plugin its name in loaded_cluster_plugins, the
  node manager cluster/ in a mounted configfs, with heartbeat_mode on a
  2007-era kernel);
- `modprobe -r NAME` removes it and the modules only it used, with their files;
- `mount` and `umount` add and drop /proc/mounts lines; unmounting gives
  back the reference the mount held on its file system's module;
- a new o2nm cluster shows the kernel's default timeouts (and, with stack
  glue, heartbeat mode local); each o2nm item pins ocfs2_nodemanager twice,
  and removing it gives the two references back (doc/kernel.md);
- a daemon started counts as running, a daemon signalled as gone, and
  o2cb_controld takes the cluster it built along.

What modprobe would load is asked of modprobe itself, once per run, for
every module this tool may load (`modprobe --show-depends -a`): it knows
the aliases, soft dependencies and install lines of the machine.
"""

from __future__ import annotations

import os
import re

from .changes import (
    MKDIR,
    REMOVE,
    REPLACE,
    RMDIR,
    RUN,
    SIGNAL,
    START,
    SUCCESS,
    WRITE,
    Change,
    CommandResult,
)
from .configfs import NEW_CLUSTER_IDLE_TIMEOUT_MS, NEW_CLUSTER_KEEPALIVE_DELAY_MS
from .kernel import (
    CLUSTER_STACK_FILE,
    FILESYSTEM_MODULES,
    LEGACY_CONFIGFS,
    LEGACY_THRESHOLD_FILE,
    LOADED_PLUGINS_FILE,
    PLUGIN_PREFIX,
    RECOVER_CALLBACK_FILE,
    STACKGLUE_DIR,
    SYSFS_CONFIG,
    Generation,
    Kernel,
)
from .overlay import PlannedState
from .system import System

# Every module this tool may ask modprobe to load (or to know of).
CANDIDATES = (
    "configfs", "ocfs2_stackglue", "ocfs2_nodemanager", "ocfs2_dlm", "dlm", "ocfs2_stack_o2cb",
    "ocfs2_stack_user", "ocfs2_dlmfs", "ocfs2", "ocfs2_disk_heartbeat", "ocfs2_user_heartbeat",
)
NODE_MANAGER = "ocfs2_nodemanager"
ITEM_REFERENCES = 2  # configfs pins the subsystem's module and the item's, both o2nm
# o2nm's items, under either mount point of configfs (without a stat per item).
O2NM_TREES = (f"{SYSFS_CONFIG}/cluster/", f"{LEGACY_CONFIGFS}/cluster/")
O2CB_CONTROLD = "o2cb_controld"
DLM_CONTROLD = "dlm_controld"
UNIT_PROGRAMS = {"dlm.service": DLM_CONTROLD}  # systemd units this tool starts: their daemon
# What a new o2nm cluster shows before anything is written (doc/kernel.md).
CLUSTER_DEFAULTS = {
    "idle_timeout_ms": str(NEW_CLUSTER_IDLE_TIMEOUT_MS),
    "keepalive_delay_ms": str(NEW_CLUSTER_KEEPALIVE_DELAY_MS),
    "reconnect_delay_ms": "2000", "heartbeat/dead_threshold": "31",
}
_NOT_FOUND = re.compile(r"Module (\S+) not found")


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


def module_name(line: str) -> str:
    """The module an `insmod PATH` or `builtin NAME` line of --show-depends names."""
    word = line.split()[1]
    return os.path.basename(word).split(".", 1)[0].replace("-", "_")


class ModuleIndex:
    """What `modprobe NAME` would load, for each candidate, from one query."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.needs: dict[str, list[str]] = {}  # name -> modules, dependencies first
        self.builtin: set[str] = set()
        self.missing: dict[str, str] = {}  # name -> modprobe's reason
        self._asked: set[str] = set()

    def _ask(self, name: str) -> None:
        if name in self._asked:
            return
        names = [n for n in dict.fromkeys((*CANDIDATES, name)) if n not in self._asked]
        self._asked.update(names)
        shown = self.system.run(["modprobe", "--show-depends", "-a", *names], changes=False)
        for line in shown.stderr.splitlines():
            match = _NOT_FOUND.search(line)
            if match:
                missing = match.group(1).replace("-", "_")
                self.missing[missing] = line.strip().replace("WARNING", "FATAL")
        pending = [n for n in names if n not in self.missing]
        group: list[str] = []
        for line in shown.stdout.splitlines():
            words = line.split()
            if not words or not pending:
                continue
            if words[0] == "install":
                module = pending[0]  # an install command stands in for the module itself
            elif words[0] in ("insmod", "builtin") and len(words) > 1:
                module = module_name(line)
                if words[0] == "builtin":
                    self.builtin.add(module)
            else:
                continue
            group.append(module)
            if module == pending[0]:
                self.needs[pending.pop(0)] = group
                group = []
        for name_left in pending:  # asked, answered neither way: as modprobe would fail
            self.missing.setdefault(name_left, f"modprobe: FATAL: Module {name_left} not found")

    def modules(self, name: str) -> list[str] | None:
        """NAME and what it needs, dependencies first; None when modprobe has no such module."""
        self._ask(name)
        return self.needs.get(name)

    def reason(self, name: str) -> str:
        self._ask(name)
        return self.missing.get(name, f"modprobe: FATAL: Module {name} not found")

    def is_builtin(self, name: str) -> bool:
        self._ask(name)
        return name in self.builtin


class KernelModel:
    """Enters in ``state`` what each planned change leaves; answers as the change would."""

    def __init__(self, system: System, state: PlannedState) -> None:
        self.system = system
        self.state = state
        self.kernel = Kernel(system)
        self.index = ModuleIndex(system)

    def apply(self, change: Change) -> CommandResult:
        state = self.state
        if change.kind == RUN:
            return self._command(list(change.argv))
        if change.kind in (WRITE, REPLACE):
            state.write(change.path, change.value.rstrip("\n"))
        elif change.kind == MKDIR:
            self._made(change.path)
        elif change.kind == RMDIR:
            self._item_removed(change.path)
        elif change.kind == REMOVE:
            state.remove(change.path)
        elif change.kind == START:
            state.start(change.path)
        elif change.kind == SIGNAL and change.path:
            state.stop(change.path)
            if os.path.basename(change.path).startswith(DLM_CONTROLD):
                self._dlm_cluster_gone()
            if os.path.basename(change.path).startswith(O2CB_CONTROLD):
                # o2cb_controld removes the cluster it built when it stops.
                for target in self.kernel.configfs().clusters():
                    for node in target.nodes():
                        self._item_removed(node.path)
                    self._item_removed(target.path)
        return SUCCESS

    # -- commands --------------------------------------------------------------

    def _command(self, argv: list[str]) -> CommandResult:
        program, args = argv[0], argv[1:]
        if program == "modprobe" and len(args) == 1:
            return self._load(args[0])
        if program == "modprobe" and len(args) == 2 and args[0] in ("-r", "--remove"):
            return self._unload(args[1])
        if program == "mount" and len(args) == 4 and args[0] == "-t":
            self._mount(args[1], args[2], self._relative(args[3]))
        elif program == "umount" and len(args) == 1:
            self._umount(self._relative(args[0]))
        elif program == "systemctl" and len(args) == 2 and args[1] in UNIT_PROGRAMS:
            self._unit(args[0], UNIT_PROGRAMS[args[1]])
        return SUCCESS

    def _unit(self, action: str, name: str) -> None:
        """`systemctl start|stop UNIT`: the unit's daemon runs, or is gone."""
        from .daemons import Daemon

        path = Daemon(self.system, name, "pcmk", search_path=self.system.root == "/").locate()
        if path and action == "start":
            self.state.start(path)
        elif path and action == "stop":
            self.state.stop(path)
            self._dlm_cluster_gone()

    def _dlm_cluster_gone(self) -> None:
        """dlm_controld takes the cluster it built in configfs along when it stops,
        and with it the reference that item held on the dlm module."""
        cluster = f"{self.kernel.configfs_mountpoint()}/dlm/cluster"
        if self.system.is_dir(cluster):
            self.state.remove(cluster)
            self._rewrite_modules(release="dlm")

    def _relative(self, path: str) -> str:
        """A mount point as the command was given it (under the root) as a root-relative path."""
        root = self.system.root.rstrip("/")
        return path[len(root):] or "/" if root and path.startswith(f"{root}/") else path

    # -- modules ---------------------------------------------------------------

    def _load(self, name: str) -> CommandResult:
        needed = self.index.modules(name)
        if needed is None:
            return CommandResult(1, "", self.index.reason(name))
        loaded = self.kernel.modules()
        new = [m for m in dict.fromkeys(needed) if m not in loaded and m not in self.index.builtin]
        if not new:
            return SUCCESS
        # A module is used by each new module whose chain names it.  --show-depends
        # gives chains, not direct uses, so the counts may run high; "in use" holds.
        chains = {module: self.index.needs.get(module, [module]) for module in new}
        lines = []
        for line in [*self._module_lines(), *(f"{m} 0 0 - Live 0x0" for m in new)]:
            fields = line.split()
            users = [user for user in fields[3].split(",") if user and user != "-"]
            gained = [m for m in new if m != fields[0] and fields[0] in chains[m]]
            if gained:
                count = int(fields[2]) if fields[2].isdigit() else 0
                fields[2] = str(count + len(gained))
                fields[3] = ",".join([*users, *gained]) + ","
            lines.append(" ".join(fields))
        self.state.write("/proc/modules", "\n".join(lines))
        for module in new:
            self._loaded(module)
        return SUCCESS

    def _loaded(self, module: str) -> None:
        state = self.state
        if module in FILESYSTEM_MODULES:
            nodev = "" if module == "ocfs2" else "nodev"
            self._filesystems(add=f"{nodev}\t{module}")
        if module == "configfs" and self.system.is_dir("/sys/kernel"):
            state.make_dir(SYSFS_CONFIG)  # configfs makes its mount point as it loads
        if module == "ocfs2_stackglue":
            state.make_dir(STACKGLUE_DIR)
            state.write(CLUSTER_STACK_FILE, "o2cb")
            state.write(LOADED_PLUGINS_FILE, "")
            # Every stack glue since Linux 4.x has it; online checks it once loaded.
            state.write(RECOVER_CALLBACK_FILE, "1")
        if module.startswith(PLUGIN_PREFIX):
            plugins = self.kernel.loaded_plugins()
            plugin = module.removeprefix(PLUGIN_PREFIX)
            state.write(LOADED_PLUGINS_FILE, "\n".join([*plugins, plugin]))
        if module != NODE_MANAGER:
            return
        mountpoint = self.kernel.configfs_mountpoint()
        if self.kernel.mounted_fstype(mountpoint) == "configfs":
            self._node_manager_shown(mountpoint)
        if not self.system.exists(CLUSTER_STACK_FILE) and not self._heartbeat_drivers():
            # ocfs2 1.2: the heartbeat threshold lives in /proc.
            state.write(LEGACY_THRESHOLD_FILE, "7")

    def _heartbeat_drivers(self) -> bool:
        """Whether heartbeat drivers are modules of their own: the 2007-era family."""
        return self.index.modules("ocfs2_disk_heartbeat") is not None

    def _node_manager_shown(self, mountpoint: str) -> None:
        """What the node manager shows in configfs once loaded and mounted.

        A 2007-era node manager adds cluster/heartbeat_mode, with no
        heartbeat driver yet: that family is the one without stack glue
        whose heartbeat drivers are modules of their own.  The mode it
        starts in is not known beforehand, so the plan sets it.
        """
        self.state.make_dir(f"{mountpoint}/cluster")
        if self.system.exists(CLUSTER_STACK_FILE) or self.system.exists(
                f"{mountpoint}/cluster/heartbeat_mode"):
            return
        if self._heartbeat_drivers():
            self.state.write(f"{mountpoint}/cluster/heartbeat_mode", "")
            self.state.write(f"{mountpoint}/cluster/heartbeat_available_modes", "")

    def _unload(self, name: str) -> CommandResult:
        modules = self.kernel.modules()
        if name not in modules:
            return CommandResult(1, "", f"modprobe: FATAL: Module {name} is not in kernel.")
        self._removed(name)
        return SUCCESS

    def _removed(self, name: str) -> None:
        """`modprobe -r`: the module goes, then each module it used that nothing else uses."""
        used = [other for other, module in self.kernel.modules().items() if name in module.users]
        self._rewrite_modules(drop=name)
        if name in FILESYSTEM_MODULES:
            self._filesystems(drop=name)
        if name == "configfs":
            self.state.remove(SYSFS_CONFIG)
        if name == "ocfs2_stackglue":
            self.state.remove(STACKGLUE_DIR)
        if name == NODE_MANAGER:
            self.state.remove(f"{self.kernel.configfs_mountpoint()}/cluster")
        for other in used:
            module = self.kernel.modules().get(other)
            if module is not None and not module.in_use:
                self._removed(other)

    def _module_lines(self) -> list[str]:
        return [line for line in (self.system.read_optional("/proc/modules") or "").splitlines()
                if line.split()]

    def _rewrite_modules(self, drop: str = "", release: str = "", references: int = 1) -> None:
        """/proc/modules without module ``drop`` (its users column too), and with
        ``references`` fewer on module ``release`` (more, when negative)."""
        planned = self.state.values.get("/proc/modules")
        if planned is not None and not drop:
            # Written here before, so already in the form below: only the line of
            # ``release`` changes (one per node a plan makes or removes).
            self.state.write("/proc/modules", _released(planned, release, references))
            return
        lines = []
        for line in self._module_lines():
            fields = line.split()
            if fields[0] == drop:
                continue
            if len(fields) >= 4:
                users = [user for user in fields[3].split(",") if user and user != "-"]
                count = int(fields[2]) if fields[2].isdigit() else 0
                if drop in users:
                    users.remove(drop)
                    count -= 1
                if fields[0] == release:
                    count -= references
                fields[2] = str(max(count, 0))
                fields[3] = ",".join(users) + "," if users else "-"
            lines.append(" ".join(fields))
        self.state.write("/proc/modules", "\n".join(lines))

    def _filesystems(self, add: str = "", drop: str = "") -> None:
        text = self.system.read_optional("/proc/filesystems") or ""
        lines = [line for line in text.splitlines() if line.split() and line.split()[-1] != drop]
        if add:
            lines.append(add)
        self.state.write("/proc/filesystems", "\n".join(lines))

    # -- mounts ----------------------------------------------------------------

    def _mount(self, fstype: str, device: str, mountpoint: str) -> None:
        text = self.system.read_optional("/proc/mounts") or ""
        self.state.write("/proc/mounts", f"{text}{device} {mountpoint} {fstype} rw 0 0")
        self._rewrite_modules(release=fstype, references=-1)  # a mount holds its module
        present = NODE_MANAGER in self.kernel.modules() or self.index.is_builtin(NODE_MANAGER)
        if fstype == "configfs" and present:
            self._node_manager_shown(mountpoint)

    def _umount(self, mountpoint: str) -> None:
        names = {mountpoint, self.system.path(mountpoint)}
        kept, fstypes = [], []
        for line in (self.system.read_optional("/proc/mounts") or "").splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[1] in names:
                fstypes.append(fields[2])
            elif fields:
                kept.append(line)
        self.state.write("/proc/mounts", "\n".join(kept))
        for fstype in fstypes:
            self._rewrite_modules(release=fstype)

    # -- configfs --------------------------------------------------------------

    def _made(self, path: str) -> None:
        """A directory made; in configfs, an o2nm item pins ocfs2_nodemanager, and a
        cluster comes with its heartbeat mode on a stack-glue kernel (o2hb starts in
        local mode)."""
        self.state.make_dir(path)
        if not path.startswith(O2NM_TREES):
            return
        self._rewrite_modules(release=NODE_MANAGER, references=-ITEM_REFERENCES)
        if f"{_parent(path)}/" not in O2NM_TREES:
            return  # not a cluster
        generation = self.kernel.generation()
        self.state.make_dir(f"{path}/heartbeat")
        if generation is not Generation.LEGACY:  # ocfs2 1.2 clusters have no timeouts
            for attribute, value in CLUSTER_DEFAULTS.items():
                self.state.write(f"{path}/{attribute}", value)
        if generation is Generation.STACKGLUE:
            self.state.write(f"{path}/heartbeat/mode", "local")

    def _item_removed(self, path: str) -> None:
        """A directory removed; an o2nm item gives its references back."""
        if path.startswith(O2NM_TREES):
            self._rewrite_modules(release=NODE_MANAGER, references=ITEM_REFERENCES)
        self.state.remove(path)


def _released(text: str, name: str, references: int) -> str:
    """``text``, lines of /proc/modules as _rewrite_modules writes them, with
    ``references`` fewer on module ``name`` (never below 0)."""
    if not name:
        return text
    if text.startswith(f"{name} "):
        start = 0
    else:
        start = text.find(f"\n{name} ") + 1
        if start == 0:
            return text
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    fields = text[start:end].split(" ")
    if len(fields) < 4:
        return text
    count = int(fields[2]) if fields[2].isdigit() else 0
    fields[2] = str(max(count - references, 0))
    return f"{text[:start]}{' '.join(fields)}{text[end:]}"
