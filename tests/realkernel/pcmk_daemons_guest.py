"""Guest side of pcmk on real daemons: Debian's corosync and dlm_controld, one node.

Run in the virtual machine instead of ``guest.py`` (test_pcmk_daemons.py
boots with this file as the guest script).  One scenario runs every case
in order on one boot, as the daemons carry state from one case to the
next: corosync down; corosync running another cluster; our start bringing
dlm_controld up, a pcmk volume mounted and written, stop and offline
refused, umount and stop; dlm_controld started by hand before our start.
Nothing here is a double.  The guest has no udev: dlm_controld opens
/dev/misc/NAME, so those links are made first (they may point at devices
the dlm module makes later).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# This tree's o2cb_init first, whichever one the interpreter has installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

try:
    from . import guest
except ImportError:  # run as a script in the guest
    import guest  # type: ignore[no-redef]

CLUSTER = guest.CLUSTER
VOLUME = "/tmp/o2cb-rk-pcmk.img"
MOUNT = "/tmp/o2cb-rk-pcmk-mnt"
PAYLOAD = f"{MOUNT}/written"
COROSYNC_LOG = "/tmp/o2cb-rk-corosync.log"
# Under emulation corosync's default token (1 s) times the membership out.
COROSYNC_CONF = f"""\
totem {{
    version: 2
    cluster_name: {CLUSTER}
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: 10000
}}
nodelist {{
    node {{
        ring0_addr: 127.0.0.1
        name: {guest.HOSTNAME_NODE}
        nodeid: 1
    }}
}}
quorum {{
    provider: corosync_votequorum
}}
logging {{
    to_stderr: no
    to_logfile: yes
    logfile: {COROSYNC_LOG}
    to_syslog: no
}}
"""
PROGRAMS = ("corosync", "dlm_controld")


def write_pcmk_config(cluster: str = CLUSTER) -> None:
    with open("/etc/default/o2cb", "w") as handle:
        handle.write(f"O2CB_ENABLED=true\nO2CB_STACK=pcmk\nO2CB_BOOTCLUSTER={cluster}\n"
                     "O2CB_QUORUM_TIMEOUT=240\n")


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


def ocfs2_modules() -> list[str]:
    return [name for name in (row["name"] for row in guest.modules()) if name.startswith("ocfs2")]


def state(ctx: guest.Context, label: str) -> None:
    """A snapshot with the daemons and the lockspaces."""
    ctx.snap(label)
    ctx.note(f"{label} daemons", pids())
    ctx.note(f"{label} lockspaces", sorted(os.listdir("/sys/kernel/dlm"))
             if os.path.isdir("/sys/kernel/dlm") else [])


def wait_for(ctx: guest.Context, label: str, command: list[str], seconds: float) -> bool:
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if subprocess.run(command, capture_output=True, check=False).returncode == 0:
            ctx.note(label, round(time.monotonic() - began, 1))
            return True
        time.sleep(1)
    ctx.note(label, None)
    return False


def prepare_dlm() -> None:
    os.makedirs("/etc/dlm", exist_ok=True)
    with open("/etc/dlm/dlm.conf", "w") as handle:
        handle.write("enable_fencing=0\n")  # no fencing agent in a test bed
    os.makedirs("/dev/misc", exist_ok=True)
    for name in ("dlm-control", "dlm-monitor", "dlm_plock"):
        link = f"/dev/misc/{name}"
        if not os.path.lexists(link):
            os.symlink(f"/dev/{name}", link)


def start_corosync(ctx: guest.Context) -> subprocess.Popen[bytes]:
    os.makedirs("/etc/corosync", exist_ok=True)
    with open("/etc/corosync/corosync.conf", "w") as handle:
        handle.write(COROSYNC_CONF)
    process = subprocess.Popen(["corosync", "-f"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(ctx, "corosync quorate after", ["corosync-quorumtool", "-s"], 600)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@guest.scenario("pcmk:daemons")
def pcmk_daemons(ctx: guest.Context) -> None:
    # A started dlm_controld must show its cluster in configfs within this.
    os.environ["O2CB_DAEMON_TIMEOUT"] = "120"
    prepare_dlm()
    write_pcmk_config()
    began = time.monotonic()

    # corosync not running: refused, nothing loaded.
    state(ctx, "down before")
    ctx.o2cb("start", label="start corosync down")
    state(ctx, "down after")

    corosync = start_corosync(ctx)
    try:
        # corosync runs another cluster than the boot cluster.
        write_pcmk_config("other")
        state(ctx, "mismatch before")
        ctx.o2cb("start", label="start name mismatch")
        state(ctx, "mismatch after")
        write_pcmk_config()

        # dlm_controld not running: our start brings it up.
        ctx.o2cb("start")
        state(ctx, "started")
        ctx.o2cb("status")
        ctx.o2cb("status", "--json", label="status json")
        ctx.sh("mkfs", f"truncate -s 256M {VOLUME} && DEV=$(losetup -f --show {VOLUME})"
               f" && echo $DEV > {VOLUME}.dev && mkfs.ocfs2 -q -F -N 2 --cluster-stack=pcmk"
               f" --cluster-name={CLUSTER} $DEV", timeout=600)
        ctx.sh("mount", f"mkdir -p {MOUNT} && mount -t ocfs2 $(cat {VOLUME}.dev) {MOUNT}"
               f" && echo pcmk-data > {PAYLOAD} && sync && cat {PAYLOAD}", timeout=600)
        state(ctx, "mounted")
        ctx.o2cb("status", "--json", label="status json mounted")
        ctx.o2cb("stop", label="stop refused")
        ctx.o2cb("offline", label="offline refused")
        ctx.sh("read back", f"cat {PAYLOAD}")
        state(ctx, "refused")
        ctx.sh("umount", f"umount {MOUNT}", timeout=600)
        ctx.o2cb("stop")
        state(ctx, "stopped")

        # dlm_controld started by someone else: left running by our stop.
        ctx.sh("dlm_controld by hand", "modprobe dlm && (grep -q ' configfs ' /proc/mounts"
               " || mount -t configfs none /sys/kernel/config) && dlm_controld")
        wait_for(ctx, "dlm_controld by hand ready after", ["dlm_tool", "status"], 300)
        ctx.o2cb("start", label="start with their dlm_controld")
        ctx.o2cb("stop", label="stop with their dlm_controld")
        state(ctx, "theirs stopped")
    finally:
        for pid in pids()["dlm_controld"]:
            os.kill(pid, signal.SIGTERM)
        stop(corosync)
        ctx.sh("losetup", "losetup -D")
        ctx.note("seconds", round(time.monotonic() - began, 1))
    state(ctx, "end")


def status_facts(step: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = json.loads(step["stdout"])
    return facts


SCENARIOS = [name for name in guest.SCENARIOS if name.startswith("pcmk:")]


if __name__ == "__main__":
    sys.exit(guest.main(sys.argv))
