"""Guest side of the booted-Debian benchmark (benchmarks/bootbed.py): run at boot, as root.

The machine is the boot bed's image (systemd, our .deb installed, ocfs2-tools'
script diverted to /etc/init.d/o2cb.ocfs2-tools).  After o2cb.service has
been stopped, the kernel's state is the baseline; each implementation then
runs status (offline), start, status (online) and stop, from the baseline,
round after round, the two in turn (the one that goes first alternates).
Each command is timed as a whole process: wall time, and the CPU time of it
and its children.  The results go to /run/bed/bench.json.

Standard library only: the guest has no copy of the repository.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

IMPLS = {"ours": "/etc/init.d/o2cb", "reference": "/etc/init.d/o2cb.ocfs2-tools"}
VERBS = (("status offline", "status"), ("start", "start"), ("status online", "status"),
         ("stop", "stop"))
# As a person runs them by hand, without the hand-over to systemctl.
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "SYSTEMCTL_SKIP_REDIRECT": "1"}
OUT = "/run/bed"


def mounts() -> list[tuple[str, str, str]]:
    with open("/proc/mounts") as handle:
        return [tuple(line.split()[:3]) for line in handle]  # type: ignore[misc]


def modules() -> dict[str, tuple[int, str]]:
    with open("/proc/modules") as handle:
        rows = [line.split() for line in handle]
    return {row[0]: (int(row[2]), row[3]) for row in rows}


def state() -> dict[str, list[str]]:
    return {"mounts": sorted(" ".join(m) for m in mounts()), "modules": sorted(modules())}


def quiet(*argv: str) -> int:
    return subprocess.run(argv, capture_output=True, env=ENV, check=False).returncode


def reset(baseline: dict[str, list[str]]) -> list[str]:
    """Back to the baseline: no o2hbmonitor, no cluster, no extra mount or module."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    if handle.read().strip() == "o2hbmonitor":
                        os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass
    keep = set(baseline["mounts"])
    top = "/sys/kernel/config/cluster"
    if os.path.isdir(top):
        for cluster in os.listdir(top):
            node_dir = f"{top}/{cluster}/node"
            for node in os.listdir(node_dir) if os.path.isdir(node_dir) else []:
                quiet("rmdir", f"{node_dir}/{node}")
            quiet("rmdir", f"{top}/{cluster}")
    for fstype in ("ocfs2_dlmfs", "configfs"):
        for row in reversed(mounts()):
            if row[2] == fstype and " ".join(row) not in keep:
                quiet("umount", row[1])
    for _ in range(10):
        extra = {name: row for name, row in modules().items() if name not in baseline["modules"]}
        free = [name for name, (refs, users) in extra.items() if refs == 0 and users == "-"]
        if not free:
            break
        for name in free:
            quiet("rmmod", name)
    now = state()
    return [f"{key} not back to the baseline: {sorted(set(now[key]) ^ set(baseline[key]))}"
            for key in now if now[key] != baseline[key]]


def timed(argv: list[str], log: str) -> tuple[int, float, float]:
    """Exit code, wall seconds and CPU seconds (the command and its children)."""
    actions = [(os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
               (os.POSIX_SPAWN_DUP2, 1, 2),
               (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
    started = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, ENV, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    return os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime


def main(rounds: int) -> None:
    os.makedirs(OUT, exist_ok=True)
    results: dict[str, object] = {"uname": os.uname().release, "rounds": rounds}
    problems: list[str] = []
    rc = quiet("systemctl", "stop", "o2cb.service")
    if rc:
        problems.append(f"systemctl stop o2cb.service exited {rc}")
    baseline = state()
    results["baseline"] = baseline
    runs: list[dict[str, object]] = []
    for number in range(rounds):
        order = list(IMPLS) if number % 2 == 0 else list(reversed(IMPLS))
        for impl in order:
            problems += [f"round {number + 1} before {impl}: {p}" for p in reset(baseline)]
            for label, verb in VERBS:
                code, wall, cpu = timed([IMPLS[impl], verb], f"{OUT}/{impl}.log")
                runs.append({"impl": impl, "label": label, "round": number + 1, "rc": code,
                             "wall": wall, "cpu": cpu})
            problems += [f"round {number + 1} after {impl}: {p}" for p in reset(baseline)]
    results["runs"] = runs
    results["problems"] = problems
    with open("/proc/loadavg") as handle:
        results["loadavg"] = handle.read().strip()
    with open(f"{OUT}/bench.json", "w") as handle:
        json.dump(results, handle, indent=1)


if __name__ == "__main__":
    try:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
    finally:
        subprocess.run(["tar", "-C", OUT, "-cf", "/dev/vdc", "."], check=False)
        subprocess.run(["sync"], check=False)
        print("bench-guest: done, powering off", file=sys.stderr, flush=True)
        subprocess.run(["systemctl", "poweroff"], check=False)
