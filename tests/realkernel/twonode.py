"""Host side of the two-node bed: two guests of Debian's kernel, one shared disk, one network.

Guest A (vm-a) listens on a qemu socket network on loopback, guest B (vm-b)
connects to it; both get the same raw disk images (cache=none, no image
locking: the cluster file system does the locking) and the same host
directory, shared read-write, in which they meet through flag files and
leave their results.  See twonode_guest.py for what runs inside.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import harness, twonode_guest

GUEST_SCRIPT = Path(twonode_guest.__file__).resolve()
DISK_SIZE = 256 << 20
ROLES = ("a", "b")
# Under emulation on a loaded machine a scenario took up to 400 s.
SECONDS_PER_SCENARIO = 400.0


def require_pair() -> None:
    """Skip (fail under CI) when the bed, or what the second node needs, is missing."""
    import pytest

    harness.require_bed()
    if not shutil.which("ip"):
        reason = "two-node bed unavailable: ip not found (apt-get install iproute2)"
        if harness.in_ci():
            pytest.fail(reason + " (CI is set: install it with .ci/install-realkernel)")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port (read from /proc, without connecting:
    qemu's socket netdev takes the first connection as its peer)."""
    wanted = f"0100007F:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(line.split()[1] == wanted and line.split()[3] == "0A" for line in lines)


def qemu_options(role: str, port: int, disks: list[Path]) -> str:
    how = "listen" if role == "a" else "connect"
    options = [
        f"-netdev socket,id=n1,{how}=127.0.0.1:{port}",
        f"-device virtio-net-pci,netdev=n1,mac={twonode_guest.MACS[role]}",
    ]
    for index, (disk, serial) in enumerate(zip(disks, twonode_guest.DISK_SERIALS, strict=False)):
        options += [
            f"-drive file={disk},format=raw,if=none,id=d{index},cache=none,file.locking=off",
            f"-device virtio-blk-pci,drive=d{index},serial={serial}",
        ]
    return " ".join(options)


def _command(role: str, workdir: Path, port: int, disks: list[Path]) -> list[str]:
    return harness.vng_command(
        str(harness.kernel_version()),
        workdir,
        f"{sys.executable} {GUEST_SCRIPT} {workdir / f'plan-{role}.json'}",
        "--name",
        twonode_guest.NODES[role][0],
        # One "=" argument: the value starts with a dash.
        "--qemu-opts=" + qemu_options(role, port, disks),
    )


def boot_pair(scenarios: list[str], *, timeout: float | None = None) -> dict[str, harness.Boot]:
    """Boot both nodes, run ``scenarios`` on them together; one Boot per node, by role.

    The default limit grows with the scenarios (a hung step is caught sooner,
    at the meeting point the other node waits at)."""
    if timeout is None:
        timeout = max(harness.BOOT_TIMEOUT, SECONDS_PER_SCENARIO * (len(scenarios) + 1))
    unknown = [name for name in scenarios if name not in twonode_guest.SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios: {unknown}")
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(harness.REPO / "o2cb_init")], check=False
    )
    workdir = Path(tempfile.mkdtemp(prefix="o2cb-tn-", dir="/tmp"))
    sync = workdir / "sync"
    sync.mkdir()
    disks = []
    for serial in twonode_guest.DISK_SERIALS:
        disk = workdir / f"{serial}.img"
        with open(disk, "wb") as handle:
            handle.truncate(DISK_SIZE)
        disks.append(disk)
    for role in ROLES:
        plan = {
            "role": role,
            "scenarios": scenarios,
            "sync": str(sync),
            "results": str(workdir / f"results-{role}.json"),
            "commands": {"ours": harness.our_command(), "reference": ["/etc/init.d/o2cb"]},
            "ours_entry": harness.OUR_ENTRY,
            "fork_ours": True,
        }
        (workdir / f"plan-{role}.json").write_text(json.dumps(plan, indent=1))
    port = free_port()
    started = time.monotonic()
    deadline = started + timeout
    procs: dict[str, subprocess.Popen[bytes]] = {}
    problems: dict[str, list[str]] = {role: [] for role in ROLES}
    consoles = {role: open(workdir / f"console-{role}.txt", "w") for role in ROLES}  # noqa: SIM115
    try:
        for role in ROLES:
            procs[role] = subprocess.Popen(
                _command(role, workdir, port, disks),
                stdin=subprocess.DEVNULL,
                stdout=consoles[role],
                stderr=subprocess.STDOUT,
                cwd=harness.REPO,
                start_new_session=True,
            )
            # B's qemu connects at start-up: A's must be listening by then.
            while role == "a" and not listening(port) and procs["a"].poll() is None:
                if time.monotonic() > started + 60:
                    problems["a"].append("qemu of node a never listened")
                    break
                time.sleep(0.1)

        def wait(role: str) -> float:
            try:
                procs[role].wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                problems[role].append(f"boot timed out after {timeout:.0f}s")
                os.killpg(procs[role].pid, signal.SIGKILL)
                procs[role].wait()
            return time.monotonic() - started

        with ThreadPoolExecutor(max_workers=2) as pool:
            seconds = dict(zip(ROLES, pool.map(wait, ROLES), strict=True))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for handle in consoles.values():
            handle.close()
    boots = {}
    for role in ROLES:
        console = (workdir / f"console-{role}.txt").read_text(errors="replace")
        shown = console.split(harness.MARKER, 1)[1] if harness.MARKER in console else console
        try:
            results = json.loads((workdir / f"results-{role}.json").read_text())
        except (OSError, ValueError) as error:
            problems[role].append(f"no results from node {role}: {error}")
            results = {}
        if results and not results.get("finished"):
            problems[role].append(f"the runner of node {role} did not finish")
        boots[role] = harness.Boot(
            f"node {role}",
            results,
            shown,
            procs[role].returncode,
            seconds[role],
            workdir,
            problems[role],
        )
    if not (any(problems.values()) or os.environ.get("O2CB_RK_KEEP")):
        shutil.rmtree(workdir, ignore_errors=True)
    return boots
