"""Guest side of the pcmk stack's real daemons: corosync and dlm_controld, set up by hand.

What both pcmk beds need inside a guest (pcmk_daemons_guest.py on one
node, twonode_pcmk_guest.py on two): corosync.conf for a node list,
dlm.conf without fencing, the /dev/misc links dlm_controld opens (the
guests have no udev), corosync started in the foreground and waited for,
and the daemons' pids.  Standard library only; doc/pcmk.md says why each
piece is there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator

try:
    from . import guest
except ImportError:  # run as a script in the guest
    import guest  # type: ignore[no-redef]

PROGRAMS = ("corosync", "dlm_controld")
COROSYNC_CONF = "/etc/corosync/corosync.conf"
COROSYNC_LOG = "/tmp/o2cb-rk-corosync.log"
DLM_CONF = "/etc/dlm/dlm.conf"
MISC_DEVICES = ("dlm-control", "dlm-monitor", "dlm_plock")
# Under emulation corosync's default token (1 s) times the membership out.
TOKEN_MS = 10000
# Every file the setup writes: saved and put back by restored_machine().
WRITTEN = (COROSYNC_CONF, DLM_CONF, "/etc/default/o2cb")


def corosync_conf(cluster: str, nodes: list[tuple[str, str, int]], two_node: bool) -> str:
    """corosync.conf for ``nodes`` (name, ring0 address, node id); each `{` ends its line,
    as corosync's parser requires."""
    listed = "".join(
        f"    node {{\n        ring0_addr: {address}\n        name: {name}\n"
        f"        nodeid: {nodeid}\n    }}\n"
        for name, address, nodeid in nodes
    )
    two = "    two_node: 1\n" if two_node else ""
    return (
        f"totem {{\n    version: 2\n    cluster_name: {cluster}\n    transport: knet\n"
        f"    crypto_cipher: none\n    crypto_hash: none\n    token: {TOKEN_MS}\n}}\n"
        f"nodelist {{\n{listed}}}\n"
        f"quorum {{\n    provider: corosync_votequorum\n{two}}}\n"
        f"logging {{\n    to_stderr: no\n    to_logfile: yes\n    logfile: {COROSYNC_LOG}\n"
        "    to_syslog: no\n}\n"
    )


def write_pcmk_config(cluster: str) -> None:
    with open("/etc/default/o2cb", "w") as handle:
        handle.write(
            f"O2CB_ENABLED=true\nO2CB_STACK=pcmk\nO2CB_BOOTCLUSTER={cluster}\n"
            "O2CB_QUORUM_TIMEOUT=240\n"
        )


def pids() -> dict[str, list[int]]:
    """Live processes of corosync and dlm_controld, by program name."""
    found: dict[str, list[int]] = {name: [] for name in PROGRAMS}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        comm = (guest.read(f"/proc/{entry}/comm") or "").strip()
        stat = guest.read(f"/proc/{entry}/stat") or ""
        if comm in found and stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]:
            found[comm].append(int(entry))
    return found


def lockspaces() -> list[str]:
    return sorted(os.listdir("/sys/kernel/dlm")) if os.path.isdir("/sys/kernel/dlm") else []


def state(ctx: guest.Context, label: str) -> None:
    """A snapshot with the daemons and the lockspaces."""
    ctx.snap(label)
    ctx.note(f"{label} daemons", pids())
    ctx.note(f"{label} lockspaces", lockspaces())


def wait_for(ctx: guest.Context, label: str, command: list[str], seconds: float) -> bool:
    """Run ``command`` every second until it exits 0; note how long that took (None: never)."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if subprocess.run(command, capture_output=True, check=False).returncode == 0:
            ctx.note(label, round(time.monotonic() - began, 1))
            return True
        time.sleep(1)
    ctx.note(label, None)
    return False


def prepare_dlm() -> None:
    os.makedirs(os.path.dirname(DLM_CONF), exist_ok=True)
    with open(DLM_CONF, "w") as handle:
        handle.write("enable_fencing=0\n")  # no fencing agent in a test bed
    os.makedirs("/dev/misc", exist_ok=True)
    for name in MISC_DEVICES:
        link = f"/dev/misc/{name}"
        if not os.path.lexists(link):
            os.symlink(f"/dev/{name}", link)


def start_corosync(
    ctx: guest.Context, conf: str, label: str = "corosync quorate after"
) -> subprocess.Popen[bytes]:
    """corosync with ``conf``, in the foreground as its unit runs it, waited for until
    quorate (the seconds that took are noted under ``label``)."""
    os.makedirs(os.path.dirname(COROSYNC_CONF), exist_ok=True)
    with open(COROSYNC_CONF, "w") as handle:
        handle.write(conf)
    process = subprocess.Popen(
        ["corosync", "-f"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(ctx, label, ["corosync-quorumtool", "-s"], 600)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as systemd stops it; SIGKILL only if it is still there two minutes on."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_dlm_controld() -> None:
    for pid in pids()["dlm_controld"]:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


@contextlib.contextmanager
def restored_machine() -> Iterator[None]:
    """Whatever the setup writes (configuration files, /dev/misc links, the environment)
    is put back as it was when the block ends."""
    saved = {path: guest.read(path) for path in WRITTEN}
    links = [
        f"/dev/misc/{name}" for name in MISC_DEVICES if not os.path.lexists(f"/dev/misc/{name}")
    ]
    environment = dict(os.environ)
    try:
        yield
    finally:
        for path, text in saved.items():
            if text is None:
                with contextlib.suppress(OSError):
                    os.remove(path)
            else:
                with open(path, "w") as handle:
                    handle.write(text)
        for link in links:
            with contextlib.suppress(OSError):
                os.remove(link)
        os.environ.clear()
        os.environ.update(environment)
