"""Guest-side scenario runner of the real-kernel test bed.

Runs inside the virtual machine booted by ``harness.py``, with the host's own
Python interpreter, as ``python guest.py PLAN.json``.  It uses the standard
library only (the guest reads everything over 9p; importing little keeps each
step fast) and it asserts nothing: it runs the named scenarios against one
implementation (``ours``: the ``o2cb`` CLI, or ``reference``: Debian's
/etc/init.d/o2cb), records every command with its exit code and output, takes
snapshots of the kernel state, and writes it all as JSON into the shared
results directory.  The host-side tests read that file and assert.

Between scenarios the kernel is brought back to the state it had when the
runner started (the *baseline*): mounts and modules this run added are
removed again, so every scenario starts clean.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

# Markers that frame a scenario's part of the console, so that the host can
# show the right piece of it in a failing assertion.
BEGIN = "@@@ o2cb-rk begin "
END = "@@@ o2cb-rk end "

CLUSTER = "ocfs2"
HOSTNAME_NODE = "virtme-ng"
PEER_NODE = "peer"
TIMEOUTS = {
    "O2CB_HEARTBEAT_THRESHOLD": "21",
    "O2CB_IDLE_TIMEOUT_MS": "20000",
    "O2CB_KEEPALIVE_DELAY_MS": "3000",
    "O2CB_RECONNECT_DELAY_MS": "2500",
}

# This bed's cluster: the guest itself, and a peer that never runs.
NODES = [(HOSTNAME_NODE, "127.0.0.1", 0), (PEER_NODE, "127.0.0.2", 1)]


def cluster_conf_text(nodes: list[tuple[str, str, int]]) -> str:
    """cluster.conf for cluster CLUSTER with ``nodes`` as (name, address, number)."""
    text = f"cluster:\n\tnode_count = {len(nodes)}\n\tname = {CLUSTER}\n"
    for name, address, number in nodes:
        text += (
            f"\nnode:\n\tip_port = 7777\n\tip_address = {address}\n"
            f"\tnumber = {number}\n\tname = {name}\n\tcluster = {CLUSTER}\n"
        )
    return text


CLUSTER_CONF = cluster_conf_text(NODES)


def sysconfig_text(enabled: bool = True, timeouts: dict[str, str] | None = None) -> str:
    lines = [
        "# Written by the o2cb real-kernel test bed.",
        f"O2CB_ENABLED={'true' if enabled else 'false'}",
        "O2CB_STACK=o2cb",
        f"O2CB_BOOTCLUSTER={CLUSTER}",
    ]
    lines += [f"{key}={value}" for key, value in {**TIMEOUTS, **(timeouts or {})}.items()]
    return "\n".join(lines) + "\n"


# A clean PATH: the reference script calls ocfs2-tools' own `o2cb` helper
# (/sbin/o2cb), which a Python environment's bin directory could shadow.
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DAEMONS = ("o2hbmonitor", "ocfs2_controld", "o2cb_controld")
OCFS2_SYS = "/sys/fs/ocfs2"
VOLUME_IMAGE = "/tmp/o2cb-rk-volume.img"
VOLUME_MOUNT = "/tmp/o2cb-rk-mnt"
PAYLOAD = os.path.join(VOLUME_MOUNT, "payload.bin")
AFTER_RELOAD = os.path.join(VOLUME_MOUNT, "after-reload.bin")


def log(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError as error:
        if error.errno == errno.ENOENT:
            return None
        code = error.errno or 0
        return f"<error: {errno.errorcode.get(code, code)}>"


# -- snapshots ----------------------------------------------------------------


def modules() -> list[dict[str, Any]]:
    """/proc/modules as name, refcount and dependents, in the kernel's order."""
    rows = []
    for line in (read("/proc/modules") or "").splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        users = [name for name in fields[3].split(",") if name and name != "-"]
        rows.append({"name": fields[0], "refcount": int(fields[2]), "users": users})
    return rows


# The results directory shared with the host: its mount differs from boot to
# boot and is no part of the state under test.
SHARED_DIRS: set[str] = set()


def mounts() -> list[list[str]]:
    rows = []
    for line in (read("/proc/mounts") or "").splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] not in SHARED_DIRS:
            rows.append(fields[:3])
    return rows


def configfs_mountpoint() -> str | None:
    for _source, target, fstype in mounts():
        if fstype == "configfs":
            return target
    return None


def tree(top: str) -> dict[str, str | None]:
    """Every file under ``top`` as {relative path: content}; directories end in '/'."""
    result: dict[str, str | None] = {}
    if not os.path.isdir(top):
        return result
    for directory, subdirs, files in os.walk(top):
        subdirs.sort()
        rel = os.path.relpath(directory, top)
        if rel != ".":
            result[rel + "/"] = None
        for name in sorted(files):
            path = os.path.join(directory, name)
            value = read(path)
            result[os.path.relpath(path, top)] = value.rstrip("\n") if value is not None else None
    return result


def listeners() -> list[str]:
    """TCP sockets in LISTEN state (0A) from /proc/net/tcp, as 'a.b.c.d:port'."""
    found = []
    for line in (read("/proc/net/tcp") or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A":
            continue
        address, port = fields[1].split(":")
        octets = [str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)]
        found.append(f"{'.'.join(octets)}:{int(port, 16)}")
    return sorted(found)


def daemons() -> dict[str, int]:
    """Processes of the cluster stack's daemons, {comm: pid}."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        comm = (read(f"/proc/{entry}/comm") or "").strip()
        stat = read(f"/proc/{entry}/stat") or ""
        # The guest's init does not always reap orphans: a killed daemon may
        # linger as a zombie, which is gone for every purpose that matters.
        state = stat.rsplit(")", 1)[-1].split()[:1]
        if comm.startswith(DAEMONS) and state != ["Z"]:
            found[comm] = int(entry)
    return found


def snapshot() -> dict[str, Any]:
    rows = modules()
    mountpoint = configfs_mountpoint()
    filesystems = [
        line.split()[-1]
        for line in (read("/proc/filesystems") or "").splitlines()
        if line.split() and ("ocfs2" in line or "configfs" in line)
    ]
    return {
        "modules": [row["name"] for row in rows],
        "module_refs": {row["name"]: row for row in rows},
        "mounts": mounts(),
        "filesystems": filesystems,
        "sys_fs_ocfs2": tree(OCFS2_SYS) if os.path.isdir(OCFS2_SYS) else None,
        "configfs_mountpoint": mountpoint,
        "configfs": tree(mountpoint) if mountpoint else {},
        "listeners": listeners(),
        "daemons": sorted(daemons()),
    }


# -- running scenarios --------------------------------------------------------


class Context:
    """What a scenario uses: run commands, take snapshots, note facts."""

    def __init__(self, plan: dict[str, Any], record: dict[str, Any]):
        self.plan = plan
        self.impl: str = plan["impl"]
        self.record = record
        self.labels: set[str] = set()

    def _label(self, label: str) -> str:
        base, n = label, 1
        while label in self.labels:
            n += 1
            label = f"{base}#{n}"
        self.labels.add(label)
        return label

    def run(
        self,
        label: str,
        argv: list[str],
        *,
        display: str | None = None,
        timeout: float = 180,
        entry: str | None = None,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Run ``argv`` and record it; with ``entry`` ("module:function"), in a fork.

        The fork calls the console script's function with ``argv[1:]`` in a
        child of this process, which imported the package once: under
        emulation with the root on 9p, starting a Python interpreter costs
        seconds, paid here once per boot instead of once per command.
        ``env`` adds to (or overrides) the command's environment.
        """
        label = self._label(label)
        shown = display or shlex.join(argv)
        log(f"$ {shown}")
        started = time.monotonic()
        if entry:
            rc, out, err = forked(entry, argv, timeout, env or {})
        else:
            rc, out, err = spawned(argv, timeout, env or {})
        step = {
            "label": label,
            "impl": self.impl,
            "command": shown,
            "argv": argv,
            "how": "fork" if entry else "exec",
            "rc": rc,
            "stdout": out,
            "stderr": err,
            "seconds": round(time.monotonic() - started, 2),
        }
        for text in (out, err):
            if text:
                log(text)
        log(f"[exit {rc}]")
        self.record["steps"].append(step)
        return step

    def sh(self, label: str, command: str, **kwargs: Any) -> dict[str, Any]:
        return self.run(label, ["/bin/sh", "-c", command], display=command, **kwargs)

    def o2cb(
        self, *args: str, label: str | None = None, impl: str | None = None, exec_: bool = False
    ) -> dict[str, Any]:
        """Run a verb with this boot's implementation (or ``impl``).

        Ours runs forked from the imported package unless the plan or
        ``exec_`` asks for a real exec of the installed ``o2cb`` command.
        """
        impl = impl or self.impl
        argv = list(self.plan["commands"][impl]) + list(args)
        name = "o2cb" if impl == "ours" else "/etc/init.d/o2cb"
        fork = impl == "ours" and self.plan.get("fork_ours") and not exec_
        entry = self.plan["ours_entry"] if fork else None
        return self.run(label or " ".join(args), argv, display=" ".join([name, *args]), entry=entry)

    def ref(self, *args: str, label: str | None = None) -> dict[str, Any]:
        return self.o2cb(*args, label=label or "ref " + " ".join(args), impl="reference")

    def snap(self, label: str) -> dict[str, Any]:
        state = snapshot()
        self.record["snapshots"][label] = state
        return state

    def note(self, key: str, value: Any) -> None:
        self.record["notes"][key] = value


def spawned(argv: list[str], timeout: float, extra: dict[str, str]) -> tuple[int, str, str]:
    env = {**os.environ, "PATH": GUEST_PATH, "LC_ALL": "C", **extra}
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
        )
        return proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as error:
        return -1, _text(error.stdout), _text(error.stderr) + f"\n<timeout {timeout}s>"
    except OSError as error:
        return 127, "", f"<cannot run: {error}>"


_ENTRIES: dict[str, Callable[[], Any]] = {}


def forked(
    entry: str, argv: list[str], timeout: float, extra: dict[str, str]
) -> tuple[int, str, str]:
    """Call the console-script function ``entry`` as ``argv`` would, in a child process."""
    if entry not in _ENTRIES:
        module, _, function = entry.partition(":")
        _ENTRIES[entry] = getattr(importlib.import_module(module), function)
    function_ = _ENTRIES[entry]
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # child: never returns
            code = 1
            try:
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                os.environ.update({"PATH": GUEST_PATH, "LC_ALL": "C", **extra})
                sys.argv = [os.path.basename(argv[0]), *argv[1:]]
                try:
                    function_()
                    code = 0
                except SystemExit as leaving:
                    if leaving.code is None or isinstance(leaving.code, int):
                        code = leaving.code or 0
                    else:
                        sys.stderr.write(f"{leaving.code}\n")
                except BaseException:  # noqa: B036 - reported like an uncaught exception
                    traceback.print_exc()
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                rc = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                rc = -1
                break
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        if rc == -1:
            stderr += f"\n<timeout {timeout}s>"
        return rc, out.read().decode(errors="replace"), stderr


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else str(data)


SCENARIOS: dict[str, Callable[[Context], None]] = {}


def scenario(name: str) -> Callable[[Callable[[Context], None]], Callable[[Context], None]]:
    def register(function: Callable[[Context], None]) -> Callable[[Context], None]:
        SCENARIOS[name] = function
        return function

    return register


@scenario("start")
def start_on_clean_kernel(ctx: Context) -> None:
    ctx.snap("before")
    ctx.o2cb("start", exec_=True)  # the installed command itself, not a fork
    ctx.snap("after")


@scenario("status")
def status_online_and_offline(ctx: Context) -> None:
    ctx.o2cb("start")
    ctx.o2cb("status", label="status online")
    ctx.o2cb("online-status", label="online-status online")
    if ctx.impl == "ours":
        ctx.o2cb("status", "--json", label="status --json online")
    ctx.o2cb("stop")
    ctx.o2cb("status", label="status offline")
    ctx.o2cb("online-status", label="online-status offline")
    if ctx.impl == "ours":
        ctx.o2cb("status", "--json", label="status --json offline")


def sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError as error:
        return f"<error: {error}>"


def make_volume(ctx: Context) -> str:
    """An OCFS2 volume for two nodes of our cluster on a loop device, mounted."""
    ctx.sh("make image", f"rm -f {VOLUME_IMAGE} && truncate -s 256M {VOLUME_IMAGE}")
    loop = ctx.run("losetup", ["losetup", "--find", "--show", VOLUME_IMAGE])["stdout"].strip()
    ctx.note("device", loop)
    mkfs = "mkfs.ocfs2 -q -F -N 2 -b 4K -C 4K -J size=8M -L o2cbrk --cluster-stack=o2cb"
    ctx.run("mkfs", [*mkfs.split(), f"--cluster-name={CLUSTER}", loop])
    os.makedirs(VOLUME_MOUNT, exist_ok=True)
    ctx.run("mount", ["mount", "-t", "ocfs2", loop, VOLUME_MOUNT])
    return loop


def write_payload(ctx: Context, path: str, note: str) -> None:
    """1 MiB of random data written to ``path`` and synced; its checksum noted as ``note``."""
    data = os.urandom(1 << 20)
    try:
        with open(path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        ctx.note(f"{note} error", str(error))
    ctx.note(note, hashlib.sha256(data).hexdigest())


@scenario("data-safety")
def refuse_to_pull_the_cluster_from_a_mounted_volume(ctx: Context) -> None:
    ctx.o2cb("start")
    make_volume(ctx)
    write_payload(ctx, PAYLOAD, "sha256_written")
    ctx.note("sha256_mounted", sha256(PAYLOAD))
    ctx.snap("mounted")
    for verb in ("stop", "offline", "force-offline", "unload"):
        ctx.o2cb(verb, label=f"{verb} while mounted")
        ctx.snap(f"after {verb}")
    ctx.o2cb("online-status", label="online-status while mounted")
    ctx.run("drop caches", ["/bin/sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"])
    ctx.note("sha256_after", sha256(PAYLOAD))
    ctx.run("umount", ["umount", VOLUME_MOUNT])
    ctx.snap("unmounted")
    ctx.o2cb("stop", label="stop after umount")
    ctx.snap("stopped")


# A node added to cluster.conf while the cluster runs; it never boots.
THIRD_NODE = ("third", "127.0.0.3", 2)


@scenario("local-reload")
def reload_in_local_mode_under_a_mounted_volume(ctx: Context) -> None:
    """What reload changes in local mode with a volume mounted, and what it refuses."""
    ctx.o2cb("start")
    make_volume(ctx)
    write_payload(ctx, PAYLOAD, "sha256_before_reload")
    ctx.snap("mounted")
    write_config(cluster_conf_text([*NODES, THIRD_NODE]))
    ctx.o2cb("status", label="status pending")
    ctx.o2cb("--dry-run", "reload", label="reload dry-run")
    ctx.snap("after dry run")
    ctx.o2cb("reload", label="reload add")
    ctx.snap("added")
    without_peer = cluster_conf_text([NODES[0], THIRD_NODE])
    write_config(without_peer)
    ctx.o2cb("reload", label="reload removal")
    ctx.snap("removed")
    write_config(without_peer, sysconfig_text(timeouts={"O2CB_IDLE_TIMEOUT_MS": "25000"}))
    ctx.o2cb("reload", label="reload timeout")
    ctx.snap("refused")
    write_config(without_peer)
    ctx.o2cb("status", label="status after reload")
    write_payload(ctx, AFTER_RELOAD, "sha256_written_after_reload")
    ctx.run("drop caches", ["/bin/sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"])
    ctx.note("sha256_read_after_reload", [sha256(PAYLOAD), sha256(AFTER_RELOAD)])
    ctx.run("umount", ["umount", VOLUME_MOUNT])
    ctx.o2cb("stop", label="stop after umount")
    ctx.snap("stopped")


@scenario("demo")
def the_whole_story(ctx: Context) -> None:
    """What `make demo` shows: the installed command, each verb as an admin types it."""
    ctx.run("config", ["cat", "/etc/default/o2cb", "/etc/ocfs2/cluster.conf"])
    ctx.o2cb("start", exec_=True)
    ctx.o2cb("status", exec_=True)
    ctx.sh(
        "kernel",
        "cut -d' ' -f1 /proc/modules | grep -E '^(ocfs2|configfs)';"
        " grep -E ' (configfs|ocfs2_dlmfs) ' /proc/mounts",
    )
    make_volume(ctx)
    ctx.sh(
        "write",
        f"echo 'kept safe by o2cb' > {VOLUME_MOUNT}/hello && sync && cat {VOLUME_MOUNT}/hello",
    )
    ctx.o2cb("stop", exec_=True, label="stop while mounted")
    ctx.sh("read", f"cat {VOLUME_MOUNT}/hello")
    ctx.run("umount", ["umount", VOLUME_MOUNT])
    ctx.o2cb("stop", exec_=True, label="stop after umount")
    ctx.o2cb("status", exec_=True, label="status after stop")
    ctx.snap("end")


@scenario("clean-shutdown")
def start_then_stop_leaves_nothing_behind(ctx: Context) -> None:
    ctx.snap("before")
    ctx.o2cb("start")
    ctx.snap("online")
    ctx.o2cb("stop")
    ctx.snap("after")


@scenario("idempotence")
def twice_changes_nothing(ctx: Context) -> None:
    ctx.snap("before")
    ctx.o2cb("start", label="start 1")
    ctx.snap("start 1")
    ctx.o2cb("start", label="start 2")
    ctx.snap("start 2")
    ctx.o2cb("stop", label="stop 1")
    ctx.snap("stop 1")
    ctx.o2cb("stop", label="stop 2")
    ctx.snap("stop 2")


# Parity: the same verb from the same starting state, brought about by the
# reference script in both boots, so that only the verb under test differs.
PARITY_CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (reference verbs, or "sh:COMMAND", that set the starting state; verb under test)
    "start": ((), ("start",)),
    "start-no-debugfs": (("sh:umount /sys/kernel/debug",), ("start",)),
    "start-stack-was-pcmk": (
        ("sh:modprobe ocfs2_stackglue && echo pcmk > /sys/fs/ocfs2/cluster_stack",),
        ("start",),
    ),
    "status-online": (("start",), ("status",)),
    "status-offline": ((), ("status",)),
    "online": ((), ("online",)),
    "offline": (("start",), ("offline",)),
    "load": ((), ("load",)),
    "unload-online": (("start",), ("unload",)),
    "unload-loaded": (("load",), ("unload",)),
    "stop": (("start",), ("stop",)),
    "stop-clean": ((), ("stop",)),
}


def _parity(setup: tuple[str, ...], verb: tuple[str, ...]) -> Callable[[Context], None]:
    def run(ctx: Context) -> None:
        for step in setup:
            if step.startswith("sh:"):
                ctx.sh(f"setup {step[3:]}", step[3:])
            else:
                ctx.ref(step, label=f"setup {step}")
        ctx.snap("before")
        ctx.o2cb(*verb, label="verb")
        ctx.snap("after")

    return run


for _name, (_setup, _verb) in PARITY_CASES.items():
    SCENARIOS[f"parity:{_name}"] = _parity(_setup, _verb)


# -- bringing the kernel back to the baseline ----------------------------------


def write_config(cluster_conf: str = CLUSTER_CONF, sysconfig: str | None = None) -> None:
    """Write cluster.conf and /etc/default/o2cb: by default this bed's one-node cluster."""
    os.makedirs("/etc/ocfs2", exist_ok=True)
    with open("/etc/ocfs2/cluster.conf", "w") as handle:
        handle.write(cluster_conf)
    with open("/etc/default/o2cb", "w") as handle:
        handle.write(sysconfig_text() if sysconfig is None else sysconfig)


def quiet(argv: list[str]) -> tuple[int, str]:
    env = dict(os.environ, PATH=GUEST_PATH)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def reset_kernel(baseline: dict[str, Any]) -> list[str]:
    """Undo whatever the last scenario left: daemons, mounts, configfs, modules."""
    problems: list[str] = []
    for comm, pid in daemons().items():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError as error:
            problems.append(f"kill {comm}[{pid}]: {error}")
    keep = {tuple(row) for row in baseline["mounts"]}
    for source, target, fstype in reversed(mounts()):
        if fstype == "ocfs2" and (source, target, fstype) not in keep:
            rc, out = quiet(["umount", target])
            if rc:
                problems.append(f"umount {target}: {out}")
    if os.path.exists("/sbin/losetup") or os.path.exists("/usr/sbin/losetup"):
        quiet(["losetup", "-D"])
    for source, target, fstype in reversed(mounts()):
        if fstype == "ocfs2_dlmfs" and (source, target, fstype) not in keep:
            rc, out = quiet(["umount", target])
            if rc:
                problems.append(f"umount {target}: {out}")
    top = configfs_mountpoint()
    if top and os.path.isdir(os.path.join(top, "cluster")):
        for cluster in os.listdir(os.path.join(top, "cluster")):
            base = os.path.join(top, "cluster", cluster)
            for sub in ("heartbeat", "node"):
                folder = os.path.join(base, sub)
                for entry in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
                    if os.path.isdir(os.path.join(folder, entry)):
                        try:
                            os.rmdir(os.path.join(folder, entry))
                        except OSError as error:
                            problems.append(f"rmdir {sub}/{entry}: {error}")
            try:
                os.rmdir(base)
            except OSError as error:
                problems.append(f"rmdir cluster {cluster}: {error}")
    for source, target, fstype in reversed(mounts()):
        if fstype == "configfs" and (source, target, fstype) not in keep:
            rc, out = quiet(["umount", target])
            if rc:
                problems.append(f"umount {target}: {out}")
    # Anything else mounted since (debugfs mounted again by a verb, say).
    for source, target, fstype in reversed(mounts()):
        if (source, target, fstype) not in keep:
            rc, out = quiet(["umount", target])
            if rc:
                problems.append(f"umount {target}: {out}")
    present = {tuple(row) for row in mounts()}
    for source, target, fstype in baseline["mounts"]:
        if (source, target, fstype) not in present:  # a scenario took it away
            rc, out = quiet(["mount", "-t", fstype, source, target])
            if rc:
                problems.append(f"mount {fstype} on {target}: {out}")
    wanted = set(baseline["modules"])
    while True:
        extra = [row for row in modules() if row["name"] not in wanted]
        free = [row["name"] for row in extra if row["refcount"] == 0 and not row["users"]]
        if not free:
            if extra:
                problems.append("modules still loaded: " + ", ".join(row["name"] for row in extra))
            break
        for name in free:
            rc, out = quiet(["rmmod", name])
            if rc:
                problems.append(f"rmmod {name}: {out}")
                wanted.add(name)
    write_config()
    return problems


# -- main ---------------------------------------------------------------------


def save(path: str, results: dict[str, Any]) -> None:
    temporary = path + ".part"
    with open(temporary, "w") as handle:
        json.dump(results, handle, indent=1, sort_keys=True)
    os.replace(temporary, path)


def main(argv: list[str]) -> int:
    with open(argv[1]) as handle:
        plan = json.load(handle)
    out = plan["results"]
    SHARED_DIRS.add(os.path.dirname(out))
    log(f"o2cb-rk: impl={plan['impl']} scenarios={' '.join(plan['scenarios'])}")
    write_config()
    quiet(["modprobe", "loop"])
    results: dict[str, Any] = {
        "impl": plan["impl"],
        "plan": plan,
        "uname": os.uname().release,
        "hostname": os.uname().nodename,
        "baseline": snapshot(),
        "scenarios": {},
        "finished": False,
    }
    baseline = results["baseline"]
    save(out, results)
    for name in plan["scenarios"]:
        record: dict[str, Any] = {"steps": [], "snapshots": {}, "notes": {}, "error": None}
        results["scenarios"][name] = record
        log(f"{BEGIN}{name}")
        started = time.monotonic()
        record["reset_before"] = reset_kernel(baseline)
        try:
            SCENARIOS[name](Context(plan, record))
        except Exception:  # noqa: BLE001 - recorded for the host to report
            record["error"] = traceback.format_exc()
            log(record["error"])
        record["reset_after"] = reset_kernel(baseline)
        record["seconds"] = round(time.monotonic() - started, 2)
        log(f"{END}{name}")
        save(out, results)
    results["finished"] = True
    save(out, results)
    log("o2cb-rk: done")
    return 0


if __name__ == "__main__":
    # This tree's o2cb_init (imported by the forked verbs), whichever one the
    # interpreter has installed: the bed tests the tree it is run from.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    sys.exit(main(sys.argv))
