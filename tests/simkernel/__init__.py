"""A simulated kernel for the fast tests: a temporary root plus fake modprobe/mount/umount.

Typical use (the ``sim`` fixture in tests/conftest.py does the set-up)::

    sim = SimKernel.create(tmp_path / "root")          # profile "modern"
    env = sim.environment()                            # fakes first on PATH
    subprocess.run(["o2cb.init", "--root", str(sim.root), "start"], env=env)
    assert "ocfs2_stack_o2cb" in sim.modules()

The state itself lives in files under the root (engine.py explains the
layout); this class reads it back for assertions and prepares states that
the tool should meet (modules loaded, volumes mounted, ...).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import corosync, globalhb
from .engine import (
    HIDDEN_CONFIGFS,
    PROFILES,
    STATE_DIR,
    CommandError,
    Kernel,
    read_value,
    write_file,
)

PACKAGE_DIR = Path(__file__).resolve().parent
BIN_DIR = PACKAGE_DIR / "bin"
# corosync's tools, put on PATH by the tests that have corosync installed
CLUSTER_BIN_DIR = PACKAGE_DIR / "cluster_bin"
SITE_DIR = PACKAGE_DIR / "site"
REPO = PACKAGE_DIR.parent.parent  # holds o2cb_init, the package under test

__all__ = [
    "BIN_DIR",
    "CLUSTER_BIN_DIR",
    "PROFILES",
    "SITE_DIR",
    "STATE_DIR",
    "CommandError",
    "Holder",
    "SimKernel",
    "two_node_cluster_conf",
]


class SimKernel:
    """A simulated machine rooted at ``root``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @classmethod
    def create(
        cls,
        root: Path | str,
        profile: str = "modern",
        hostname: str = "node1",
        config_mount: str = "/sys/kernel/config",
        recover_callbacks: bool = True,
    ) -> SimKernel:
        """Build a fresh machine: nothing loaded (except built-ins), nothing mounted."""
        Kernel.create(root, profile=profile, hostname=hostname, config_mount=config_mount,
                      recover_callbacks=recover_callbacks)
        return cls(root)

    def _kernel(self) -> Kernel:
        return Kernel(self.root)

    def _change(self, action: Any) -> None:
        kernel = self._kernel()
        try:
            action(kernel)
        except CommandError as error:
            raise RuntimeError(error.message) from None
        kernel.save()

    # -- the environment the tool runs in -------------------------------------

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Variables for running ``o2cb --root ROOT`` as a subprocess against this machine.

        The fakes come first on PATH and sitecustomize applies the configfs
        rules inside the subprocess (O2CB_SIMKERNEL=1).  PYTHONDONTWRITEBYTECODE
        is left out: the fakes and ``python -m o2cb_init`` are new interpreters,
        hundreds of them a run, and without bytecode each would compile the
        simulated kernel and the package from source again.
        """
        env = dict(os.environ if base is None else base)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        path = [str(BIN_DIR)]
        # The fakes start with "#!/usr/bin/env python3": let that find this
        # interpreter directly, not through a version-manager shim (pyenv's
        # costs a third of a second a call).
        interpreter_dir = Path(sys.executable).parent
        if (interpreter_dir / "python3").exists():
            path.append(str(interpreter_dir))
        path.extend(p for p in env.get("PATH", os.defpath).split(os.pathsep) if p not in path)
        env["PATH"] = os.pathsep.join(path)
        env["O2CB_ROOT"] = str(self.root)
        env["O2CB_SIMKERNEL"] = "1"
        # The tree under test first: a program that does not start in it (a
        # daemon double in ROOT/sbin, the console script) would otherwise
        # import whichever o2cb_init the interpreter has installed.
        env["PYTHONPATH"] = os.pathsep.join(
            [str(SITE_DIR), str(REPO), *filter(None, [env.get("PYTHONPATH")])]
        )
        return env

    # -- reading the state -----------------------------------------------------

    @property
    def profile(self) -> str:
        return str(self._kernel().state["profile"])

    @property
    def config_mount(self) -> str:
        """Where configfs belongs on this machine: /sys/kernel/config or /config."""
        return str(self._kernel().state["config_mount"])

    def path(self, path: str) -> Path:
        """A root-relative path ("/dlm") mapped into the root."""
        return self.root / path.lstrip("/")

    def modules(self) -> dict[str, int]:
        """Loaded modules and their refcounts, read from proc/modules."""
        modules: dict[str, int] = {}
        for line in self.path("/proc/modules").read_text(encoding="utf-8").splitlines():
            fields = line.split()
            modules[fields[0]] = int(fields[2])
        return modules

    def module_users(self, name: str) -> list[str]:
        """The users column of proc/modules for ``name`` (empty when not loaded or unused)."""
        for line in self.path("/proc/modules").read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if fields[0] == name:
                return [user for user in fields[3].split(",") if user and user != "-"]
        return []

    def filesystems(self) -> set[str]:
        text = self.path("/proc/filesystems").read_text(encoding="utf-8")
        return {line.split()[-1] for line in text.splitlines() if line.split()}

    def mounts(self) -> list[tuple[str, str]]:
        """(mount point as recorded in proc/mounts, fstype) for each mount."""
        result = []
        for line in self.path("/proc/mounts").read_text(encoding="utf-8").splitlines():
            fields = line.split()
            result.append((fields[1].replace("\\040", " "), fields[2]))
        return result

    def is_mounted(self, mountpoint_rel: str) -> bool:
        """Whether anything is mounted at a root-relative mount point ("/dlm")."""
        kernel = self._kernel()
        return kernel.find_mount(kernel.relative(str(self.path(mountpoint_rel)))) is not None

    def configfs(self) -> Path | None:
        """Where the configfs tree is visible now; None while configfs is not mounted."""
        at = self._kernel().state["configfs_at"]
        return self.path(at) if at else None

    def tree(self) -> dict[str, str]:
        """The configfs ``cluster/`` subtree: path below cluster/ -> value ("<dir>" for dirs).

        Read from the kernel's state, so it answers while configfs is not
        mounted too; empty while ocfs2_nodemanager is not loaded.
        """
        base = self._kernel().configfs_dir() / "cluster"
        result: dict[str, str] = {}
        if not base.is_dir():
            return result
        for path in sorted(base.rglob("*")):
            key = path.relative_to(base).as_posix()
            result[key] = "<dir>" if path.is_dir() else read_value(path)
        return result

    def sysfs(self) -> dict[str, str]:
        """/sys/fs/ocfs2 attributes (empty while ocfs2_stackglue is absent)."""
        base = self.path("/sys/fs/ocfs2")
        if not base.is_dir():
            return {}
        return {p.name: read_value(p) for p in sorted(base.iterdir()) if p.is_file()}

    def held_regions(self) -> list[str]:
        """Heartbeat regions a mounted volume holds, as "CLUSTER/heartbeat/UUID"."""
        return list(self._kernel().state["held_regions"])

    def snapshot(self) -> dict[str, Any]:
        """Everything a verb may change, for before/after equality."""
        return {
            "modules": sorted(self.modules()),
            "refcounts": self.modules(),
            "mounts": self.path("/proc/mounts").read_text(encoding="utf-8").splitlines(),
            "filesystems": sorted(self.filesystems()),
            "sysfs": self.sysfs(),
            "configfs_mounted": self.configfs() is not None,
            "tree": self.tree(),
            "lockspaces": self.lockspaces(),
            "dlm_cluster": self._kernel().has_dlm_cluster(),
        }

    # -- preparing a state -------------------------------------------------------

    def load(self, *modules: str) -> None:
        """Load modules as ``modprobe NAME`` would (dependencies first)."""
        for name in modules:
            self._change(lambda kernel, name=name: kernel.modprobe(name))

    def unload(self, *modules: str) -> None:
        """Remove modules as ``modprobe -r NAME`` would."""
        for name in modules:
            self._change(lambda kernel, name=name: kernel.remove(name))

    def mount(self, fstype: str, mountpoint_rel: str, device: str = "none") -> None:
        """Mount as ``mount -t FSTYPE DEVICE MOUNTPOINT`` would; creates the mount point."""
        target = self.path(mountpoint_rel)
        target.mkdir(parents=True, exist_ok=True)
        self._change(lambda kernel: kernel.mount(fstype, device, str(target)))

    def umount(self, mountpoint_rel: str) -> None:
        target = str(self.path(mountpoint_rel))
        self._change(lambda kernel: kernel.umount(target))

    def pin(self, module: str, references: int = 1) -> None:
        """References to a module that nothing the tool sees explains (a kernel thread's, say).

        ``pin(name, 0)`` drops them: the module is free again.
        """
        kernel = self._kernel()
        pins = kernel.state.setdefault("pins", {})
        pins[module] = references
        if not references:
            del pins[module]
        kernel.save()

    def set_busy(self, mountpoint_rel: str, busy: bool = True) -> None:
        """Make ``umount`` of a mount point fail with "target is busy" (or stop doing so)."""
        kernel = self._kernel()
        relative = kernel.relative(str(self.path(mountpoint_rel)))
        marks = [m for m in kernel.state["busy"] if m != relative]
        kernel.state["busy"] = marks + ([relative] if busy else [])
        kernel.save()

    def add_heartbeat_region(
        self, cluster: str, uuid: str = "0123456789ABCDEF0123456789ABCDEF"
    ) -> None:
        """A heartbeat region held active under cluster/CLUSTER/heartbeat/, as a mount makes."""
        kernel = self._kernel()
        if cluster not in kernel.cluster_names():
            raise RuntimeError(f"no configfs cluster {cluster!r} to add a heartbeat region to")
        kernel.make_region_dir(cluster, uuid, held=True)
        kernel.save()

    def mount_ocfs2_volume(
        self, cluster: str, mountpoint_rel: str = "/mnt/vol", device: str = "/dev/sdb"
    ) -> None:
        """An OCFS2 volume mounted: ocfs2 loaded, heartbeat region held, ocfs2 refcount taken."""
        kernel = self._kernel()
        if cluster not in kernel.cluster_names():
            raise RuntimeError(f"no configfs cluster {cluster!r}: bring it online first")
        self.load("ocfs2")
        self.mount("ocfs2", mountpoint_rel, device=device)

    # -- the kernel's DLM: dlm_controld's cluster, lockspaces, pcmk volumes -----

    def run_dlm_controld(self, cluster: str = "ocfs2") -> None:
        """What a running dlm_controld leaves: configfs mounted, dlm loaded, dlm/cluster made."""
        self.load("dlm")
        if self.configfs() is None:
            self.mount("configfs", self.config_mount, device="none")
        self._change(lambda kernel: kernel.make_dlm_cluster(cluster))

    def run_corosync(self, cluster: str = "ocfs2", quorate_in: float | None = 0.0,
                     members: tuple[tuple[int, str], ...] = ((1, "node1"),),
                     local: int = 1) -> None:
        """corosync running ``cluster``, quorate ``quorate_in`` seconds from now (None:
        never), with these (node id, name) members; tools in CLUSTER_BIN_DIR answer."""
        import time

        at = None if quorate_in is None else time.time() + quorate_in
        corosync.write(self.root, {"cluster_name": cluster, "quorate_at": at,
                                   "members": [list(m) for m in members], "local": local})

    def stop_corosync(self) -> None:
        corosync.write(self.root, None)

    def corosync(self) -> dict[str, Any] | None:
        """corosync's state (None: not running)."""
        return corosync.read(self.root)

    def stop_dlm_controld(self) -> None:
        self._change(lambda kernel: kernel.remove_dlm_cluster())

    def add_lockspace(self, name: str) -> None:
        """A lockspace under /sys/kernel/dlm, as lvmlockd, GFS2 or `dlm_tool join` make one."""
        self._change(lambda kernel: kernel.add_lockspace(name))

    def remove_lockspace(self, name: str) -> None:
        self._change(lambda kernel: kernel.remove_lockspace(name))

    def lockspaces(self) -> list[str]:
        return self._kernel().lockspaces()

    def add_lockspace_member(self, name: str, nodeid: int) -> None:
        """Another node joins lockspace ``name`` (its volume mounted there)."""
        self._change(lambda kernel: kernel.add_lockspace_member(name, nodeid))

    def remove_lockspace_member(self, name: str, nodeid: int) -> None:
        """That node leaves it again (its volume unmounted there)."""
        self._change(lambda kernel: kernel.remove_lockspace_member(name, nodeid))

    def mount_pcmk_volume(self, mountpoint_rel: str = "/mnt/vol",
                          device: str = "/dev/sdb") -> None:
        """A pcmk volume mounted with no help from o2cb, as mount.ocfs2 does it.

        mount.ocfs2 loads the user plugin and ocfs2 itself; the stack is set
        to pcmk and the volume joins a lockspace named by its UUID, which
        needs dlm_controld (``run_dlm_controld``) first.
        """
        self.load("ocfs2_stack_user", "ocfs2")
        write_file(self.path("/sys/fs/ocfs2/cluster_stack"), "pcmk\n")
        self.mount("ocfs2", mountpoint_rel, device=device)

    # -- global heartbeat and userdlm (globalhb.py has the rules) --------------

    def add_volume(
        self, device: str, uuid: str, global_heartbeat: bool = True, image: Path | None = None
    ) -> Path:
        """Make ``device`` (root-relative, "/dev/sdc") an OCFS2 volume with this UUID.

        Its device file is ``image`` (say, one made by mkfs.ocfs2) when given,
        else an empty file, and /sys/block lists it; mounting it follows the
        heartbeat mode rules.
        """
        node = self.path(device)
        node.parent.mkdir(parents=True, exist_ok=True)
        if image is not None:
            # A hard link: a descriptor opened through it names the device
            # (/proc/self/fd), as the kernel's region shows the bdev's name.
            node.unlink(missing_ok=True)
            try:
                os.link(image, node)
            except OSError:
                node.symlink_to(Path(image).resolve())
        elif not node.exists():
            node.touch()
        # Listed in /sys/block as the kernel lists a disk, size in 512-byte sectors.
        sectors = max(node.stat().st_size // 512, 1)
        write_file(self.path(f"/sys/block/{node.name}/size"), f"{sectors}\n")
        self._change(
            lambda kernel: globalhb.add_volume(kernel.state, device, uuid, global_heartbeat)
        )
        return node

    # -- block device stacks (/sys/block as the kernel shows them) -------------

    def add_block_device(
        self,
        name: str,
        image: Path | None = None,
        *,
        disk: str | None = None,
        holders: tuple[str, ...] = (),
        slaves: tuple[str, ...] = (),
        attributes: dict[str, str] | None = None,
    ) -> Path:
        """A disk (/sys/block/NAME) or, with ``disk``, its partition NAME, and /dev/NAME.

        The device file is a hard link to ``image`` when given (every device
        of a stack links the same image: they all read the same superblock),
        else an empty file.  ``holders`` and ``slaves`` fill the directories
        of those names; ``attributes`` are more files, relative to the
        device's sysfs directory ("device/wwid", "serial", "dm/name").
        """
        sysdir = self.path(f"/sys/block/{disk}/{name}" if disk else f"/sys/block/{name}")
        node = self.path("/dev/" + name.replace("!", "/"))
        node.parent.mkdir(parents=True, exist_ok=True)
        node.unlink(missing_ok=True)
        if image is not None:
            os.link(image, node)
        else:
            node.touch()
        sectors = max(node.stat().st_size // 512, 1)
        write_file(sysdir / "size", f"{sectors}\n")
        if disk:
            write_file(sysdir / "partition", "1\n")
        for directory, names in (("holders", holders), ("slaves", slaves)):
            (sysdir / directory).mkdir(parents=True, exist_ok=True)
            for entry in names:
                (sysdir / directory / entry).touch()  # sysfs: a link to that device
        for attribute, value in (attributes or {}).items():
            write_file(sysdir / attribute, f"{value}\n")
        return node

    def add_multipath(
        self,
        wwid: str,
        paths: tuple[str, ...],
        image: Path | None,
        *,
        up: bool = True,
        map_device: str = "dm-0",
        alias: str = "mpatha",
        path_wwid: str | None = None,
    ) -> None:
        """One LUN seen through ``paths``, SCSI disks reporting ``path_wwid``
        (``wwid`` as sysfs spells it by default), and multipath's map over them.

        ``up``: the map ``map_device`` (dm/name ``alias``, dm/uuid
        mpath-WWID, /dev/mapper/ALIAS) is listed in each path's holders/.
        Not up: only the paths, the WWID in /etc/multipath/wwids as
        multipath leaves it once it has made a map for it.
        """
        for path in paths:
            attribute = "wwid" if path.startswith("nvme") else "device/wwid"
            self.add_block_device(path, image, holders=(map_device,) if up else (),
                                  attributes={attribute: path_wwid or wwid})
        wwids = self.path("/etc/multipath/wwids")
        known = wwids.read_text(encoding="utf-8") if wwids.exists() else (
            "# Multipath wwids, Version : 1.0\n")
        write_file(wwids, f"{known}/{wwid}/\n")
        if up:
            self.add_block_device(map_device, image, slaves=paths,
                                  attributes={"dm/name": alias, "dm/uuid": f"mpath-{wwid}"})
            mapper = self.path(f"/dev/mapper/{alias}")
            mapper.parent.mkdir(parents=True, exist_ok=True)
            mapper.unlink(missing_ok=True)
            mapper.symlink_to(f"../{map_device}")

    def start_region(self, cluster: str, uuid: str, device: str, **parameters: int) -> None:
        """A running global heartbeat region for ``uuid`` on ``device``, as o2cb would start it."""
        kernel = self._kernel()
        if cluster not in kernel.cluster_names():
            raise RuntimeError(f"no configfs cluster {cluster!r} to start a region in")
        region = kernel.configfs_dir() / "cluster" / cluster / "heartbeat" / uuid.upper()
        if not region.is_dir():
            kernel.make_region_dir(cluster, uuid.upper())
        globalhb.start_region(region, device, **parameters)
        kernel.save()

    def hold(self, path_rel: str) -> Holder:
        """A live process holding ``path_rel`` open (created if missing), until released."""
        return Holder(self.path(path_rel))

    def hold_dlm(self, domain: str = "o2cbtest", lock: str = "M0000000000000000000001") -> Holder:
        """A userdlm client: a domain directory under the mounted /dlm with a lock held open."""
        if not self.is_mounted("/dlm"):
            raise RuntimeError("ocfs2_dlmfs is not mounted at /dlm")
        self.path(f"/dlm/{domain}").mkdir(exist_ok=True)
        return self.hold(f"/dlm/{domain}/{lock}")

    def write_config(self, text: str, path: str = "/etc/default/o2cb") -> Path:
        target = self.path(path)
        write_file(target, text)
        return target

    def write_cluster_conf(self, text: str) -> Path:
        return self.write_config(text, "/etc/ocfs2/cluster.conf")

    def set_hostname(self, name: str) -> None:
        write_file(self.path("/proc/sys/kernel/hostname"), f"{name}\n")

    def hidden_configfs(self) -> Path:
        """Where the configfs tree is kept while configfs is unmounted."""
        return self.root / HIDDEN_CONFIGFS

    def __repr__(self) -> str:
        return f"SimKernel({str(self.root)!r})"


# The holding process quits on its own when the test process is gone.
_HOLDER = """
import os, sys, time
parent = os.getppid()
handle = open(sys.argv[1], "a")
print("holding", flush=True)
while os.getppid() == parent:
    time.sleep(0.2)
"""


class Holder:
    """A child process with a file open; ``release()`` (or leaving ``with``) ends it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "holding":
            self.release()
            raise RuntimeError(f"could not hold {path} open")

    @property
    def pid(self) -> int:
        return self.process.pid

    def release(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def two_node_cluster_conf(hostname: str = "node1", name: str = "ocfs2") -> str:
    """cluster.conf text: this host at 127.0.0.1:7777 number 0, a peer at 10.0.0.2:7777 number 1."""
    peer = "node2" if hostname != "node2" else "node3"
    return (
        "node:\n"
        "\tip_port = 7777\n"
        "\tip_address = 127.0.0.1\n"
        "\tnumber = 0\n"
        f"\tname = {hostname}\n"
        f"\tcluster = {name}\n"
        "\n"
        "node:\n"
        "\tip_port = 7777\n"
        "\tip_address = 10.0.0.2\n"
        "\tnumber = 1\n"
        f"\tname = {peer}\n"
        f"\tcluster = {name}\n"
        "\n"
        "cluster:\n"
        "\tnode_count = 2\n"
        f"\tname = {name}\n"
    )
