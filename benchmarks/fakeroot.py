"""The fake kernel both implementations run against: a directory used as the root.

Ours runs with ``--root ROOT``; the reference script runs chrooted into
ROOT, so both read and change the very same files.  ROOT holds:

- ``proc/``, ``sys/``, ``etc/``, ``dlm``, ``run``, ``tmp``: the fake machine
  (see fakekernel.sh for what each file means);
- ``.bench/bin``: the fake ``modprobe``, ``mount``, ``umount`` (one small
  shell script), first on both PATHs;
- ``.bench/lib/configfs.so``: the configfs rules (configfs_shim.c), preloaded
  into both;
- ``usr`` (and ``bin``, ``lib``... as on the host): the host's, bound
  read-only inside the benchmark's private mount namespace, so that the
  reference finds bash, awk and ocfs2-tools' ``o2cb``.  The real
  ``modprobe``, ``mount``, ``umount``, ``insmod``, ``rmmod`` and
  ``o2hbmonitor`` under it are covered by the fakes, so that nothing run in
  the root can reach the host's kernel even by absolute path.

The mounts exist only in the namespace ``__main__`` creates; nothing here
mounts anything on the host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HOSTNAME = "node1"
CLUSTER = "ocfs2"
REFERENCE_SCRIPT = Path("/etc/init.d/o2cb")

BASE_FILESYSTEMS = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdebugfs\n\text4\n"
# Debian mounts debugfs at boot; neither implementation has to.
BASE_MOUNTS = (
    "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n"
    "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
    "debugfs /sys/kernel/debug debugfs rw,nosuid,nodev,noexec,relatime 0 0\n"
)
TIMEOUTS = {
    "O2CB_HEARTBEAT_THRESHOLD": "31",
    "O2CB_IDLE_TIMEOUT_MS": "30000",
    "O2CB_KEEPALIVE_DELAY_MS": "2000",
    "O2CB_RECONNECT_DELAY_MS": "2000",
}
# Host files the reference's shell and tools want to find in /etc.
HOST_ETC_FILES = ("passwd", "group", "nsswitch.conf", "ld.so.cache")
FAKE_TOOLS = ("modprobe", "mount", "umount")
REFUSED_TOOLS = ("insmod", "rmmod")
FAKE_PID_FILE = "run/o2hbmonitor.fake.pid"


class SetupError(Exception):
    """The benchmark cannot build its fake machine here; the message says why."""


def cluster_conf(nodes: int) -> str:
    """cluster.conf with ``nodes`` nodes; the first is this host (node1)."""
    if not 1 <= nodes <= 255:
        raise ValueError("o2nm takes 1 to 255 nodes")
    text = f"cluster:\n\tnode_count = {nodes}\n\tname = {CLUSTER}\n\n"
    for number in range(nodes):
        text += (
            "node:\n\tip_port = 7777\n"
            f"\tip_address = 10.9.{number // 250}.{number % 250 + 1}\n"
            f"\tnumber = {number}\n\tname = node{number + 1}\n\tcluster = {CLUSTER}\n\n"
        )
    return text


def sysconfig(enabled: bool) -> str:
    lines = [
        f"O2CB_ENABLED={'true' if enabled else 'false'}",
        "O2CB_STACK=o2cb",
        f"O2CB_BOOTCLUSTER={CLUSTER}",
        *(f"{key}={value}" for key, value in TIMEOUTS.items()),
    ]
    return "\n".join(lines) + "\n"


class FakeRoot:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bench = root / ".bench"

    def path(self, relative: str) -> Path:
        return self.root / relative.lstrip("/")

    # -- building ------------------------------------------------------------

    def build(self, reference: Path = REFERENCE_SCRIPT) -> None:
        """Lay out the directories, tools and the compiled helpers (no mounts)."""
        for directory in (
            "proc/sys/kernel", "sys/kernel/config", "sys/kernel/debug", "sys/fs",
            "etc/default", "etc/ocfs2", "etc/init.d", "dlm", "run", "tmp", "dev",
            ".bench/bin", ".bench/lib", ".bench/state",
        ):
            self.path(directory).mkdir(parents=True, exist_ok=True)
        self.path("proc/sys/kernel/hostname").write_text(f"{HOSTNAME}\n")
        self.path("dev/null").touch()
        for name in HOST_ETC_FILES:
            if Path("/etc", name).is_file():
                shutil.copy2(Path("/etc", name), self.path(f"etc/{name}"))
        if Path("/etc/alternatives").is_dir() and not self.path("etc/alternatives").exists():
            # awk, for one, is a link through /etc/alternatives on Debian.
            shutil.copytree("/etc/alternatives", self.path("etc/alternatives"), symlinks=True)
        if reference.is_file():
            shutil.copy2(reference, self.path("etc/init.d/o2cb"))
        kernel = self.bench / "bin" / "fakekernel"
        shutil.copy2(HERE / "fakekernel.sh", kernel)
        kernel.chmod(0o755)
        for tool in FAKE_TOOLS:
            link = self.bench / "bin" / tool
            if not link.exists():
                link.symlink_to("fakekernel")
        monitor = self.bench / "bin" / "o2hbmonitor"
        shutil.copy2(HERE / "o2hbmonitor.sh", monitor)
        monitor.chmod(0o755)
        refuse = self.bench / "bin" / "refuse"
        refuse.write_text(
            "#!/bin/sh\necho \"${0##*/}: not available in the benchmark's fake kernel\" >&2\n"
            "exit 1\n"
        )
        refuse.chmod(0o755)
        self.compile_shim()

    def compile_shim(self) -> None:
        """Build the configfs shim and the spawner (spawn.c) with the system's C compiler."""
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise SetupError("no C compiler (cc) for the benchmark's helpers: apt-get install gcc")
        for flags, output, source in (
            (["-shared", "-fPIC"], "lib/configfs.so", "configfs_shim.c"),
            ([], "bin/spawn", "spawn.c"),
        ):
            result = subprocess.run(
                [compiler, "-O2", *flags, "-o", str(self.bench / output), str(HERE / source),
                 "-ldl"],
                capture_output=True, text=True, check=False,
            )
            if result.returncode != 0:
                raise SetupError(f"building {source} failed: {result.stderr.strip()}")

    def mounted(self) -> list[str]:
        """Mount points under the root, deepest first (from this namespace's mount table)."""
        prefix = str(self.root) + "/"
        points = []
        for line in Path("/proc/self/mounts").read_text().splitlines():
            point = line.split()[1].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
        return sorted(points, key=len, reverse=True)

    def unmount_host_tree(self) -> None:
        """Undo mount_host_tree, so that the root can be removed without reaching the host."""
        for point in self.mounted():
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        left = self.mounted()
        if left:
            raise SetupError(f"still mounted, not removing {self.root}: {', '.join(left)}")

    def mount_host_tree(self) -> None:
        """Inside the private namespace: the host's programs, read-only, fakes over the tools."""
        for name in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/", name)
            target = self.path(name)
            if host.is_symlink():
                if not target.is_symlink():
                    target.symlink_to(os.readlink(host))
            elif host.is_dir():
                target.mkdir(exist_ok=True)
                _mount("--bind", str(host), str(target))
                _mount("-o", "remount,bind,ro", str(target))
        _mount("--bind", "/dev/null", str(self.path("dev/null")))
        covers = {tool: self.bench / "bin" / "fakekernel" for tool in FAKE_TOOLS}
        covers.update({tool: self.bench / "bin" / "refuse" for tool in REFUSED_TOOLS})
        covers["o2hbmonitor"] = self.bench / "bin" / "o2hbmonitor"
        covered: set[Path] = set()
        for tool, fake in covers.items():
            for directory in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
                real = Path(directory, tool)
                if not real.exists():
                    continue
                inside = self.path(str(real.resolve()))
                if inside.exists() and inside not in covered:
                    _mount("--bind", str(fake), str(inside))
                    covered.add(inside)

    # -- state ---------------------------------------------------------------

    def reset(self, nodes: int, layout: str = "default", enabled: bool = True) -> None:
        """A freshly booted machine: nothing loaded, the given configuration."""
        self.stop_fake_daemons()
        for directory in ("sys/fs", "sys/kernel/config", "run", "dlm", "tmp", "etc/sysconfig"):
            target = self.path(directory)
            if target.is_dir():
                for child in target.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        shutil.rmtree(self.path("etc/sysconfig"), ignore_errors=True)
        self.path("etc/default/o2cb").unlink(missing_ok=True)
        self.path("proc/filesystems").write_text(BASE_FILESYSTEMS)
        self.path("proc/mounts").write_text(BASE_MOUNTS)
        self.path("proc/modules").write_text("")
        (self.bench / "state/loaded").write_text("\n")
        if layout == "sysconfig":
            self.path("etc/sysconfig").mkdir()
            self.path("etc/sysconfig/o2cb").write_text(sysconfig(enabled))
        else:
            self.path("etc/default/o2cb").write_text(sysconfig(enabled))
        self.path("etc/ocfs2/cluster.conf").write_text(cluster_conf(nodes))

    def stop_fake_daemons(self) -> None:
        """End a fake o2hbmonitor left running (the reference cannot see it to stop it)."""
        pid_file = self.path(FAKE_PID_FILE)
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if b"o2hbmonitor" in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        pid_file.unlink(missing_ok=True)

    def snapshot(self) -> dict[str, Any]:
        """The kernel state and the configuration, as comparable data."""
        modules = {}
        for line in self.path("proc/modules").read_text().splitlines():
            fields = line.split()
            if fields:
                modules[fields[0]] = int(fields[2])
        mounts = [
            tuple(line.split()[:3]) for line in self.path("proc/mounts").read_text().splitlines()
        ]
        filesystems = sorted(
            line.split()[-1] for line in self.path("proc/filesystems").read_text().splitlines()
            if line.split()
        )
        config_file = self.path("etc/sysconfig/o2cb")
        if not config_file.exists():
            config_file = self.path("etc/default/o2cb")
        return {
            "modules": modules,
            "mounts": mounts,
            "filesystems": filesystems,
            "sys/fs": tree(self.path("sys/fs")),
            "configfs": tree(self.path("sys/kernel/config")),
            "config": config_values(config_file),
        }


def tree(top: Path) -> dict[str, str | None]:
    """Every file under ``top`` with its content; directories end in '/'."""
    result: dict[str, str | None] = {}
    for directory, subdirs, files in os.walk(top):
        subdirs.sort()
        relative = os.path.relpath(directory, top)
        if relative != ".":
            result[relative + "/"] = None
        for name in sorted(files):
            path = Path(directory, name)
            result[str(path.relative_to(top))] = path.read_text(errors="replace").strip()
    return result


def config_values(path: Path) -> dict[str, str]:
    """KEY=value pairs of a sysconfig file: its comments and layout are no state."""
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip().strip('"')
    return values


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SetupError(f"mount {' '.join(args)}: {result.stderr.strip()}")
