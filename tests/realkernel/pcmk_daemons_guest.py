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
import sys
import time
from pathlib import Path
from typing import Any

# This tree's o2cb_init first, whichever one the interpreter has installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

try:
    from . import guest
    from . import pcmk_stack_guest as stack
except ImportError:  # run as a script in the guest
    import guest  # type: ignore[no-redef]
    import pcmk_stack_guest as stack  # type: ignore[no-redef]

CLUSTER = guest.CLUSTER
VOLUME = "/tmp/o2cb-rk-pcmk.img"
MOUNT = "/tmp/o2cb-rk-pcmk-mnt"
PAYLOAD = f"{MOUNT}/written"
COROSYNC_CONF = stack.corosync_conf(
    CLUSTER, [(guest.HOSTNAME_NODE, "127.0.0.1", 1)], two_node=False
)


@guest.scenario("pcmk:daemons")
def pcmk_daemons(ctx: guest.Context) -> None:
    # A started dlm_controld must show its cluster in configfs within this.
    os.environ["O2CB_DAEMON_TIMEOUT"] = "120"
    stack.prepare_dlm()
    stack.write_pcmk_config(CLUSTER)
    began = time.monotonic()

    # corosync not running: refused, nothing loaded.
    stack.state(ctx, "down before")
    ctx.o2cb("start", label="start corosync down")
    stack.state(ctx, "down after")

    corosync = stack.start_corosync(ctx, COROSYNC_CONF)
    try:
        # corosync runs another cluster than the boot cluster.
        stack.write_pcmk_config("other")
        stack.state(ctx, "mismatch before")
        ctx.o2cb("start", label="start name mismatch")
        stack.state(ctx, "mismatch after")
        stack.write_pcmk_config(CLUSTER)

        # dlm_controld not running: our start brings it up.
        ctx.o2cb("start")
        stack.state(ctx, "started")
        ctx.o2cb("status")
        ctx.o2cb("status", "--json", label="status json")
        ctx.sh(
            "mkfs",
            f"truncate -s 256M {VOLUME} && DEV=$(losetup -f --show {VOLUME})"
            f" && echo $DEV > {VOLUME}.dev && mkfs.ocfs2 -q -F -N 2 --cluster-stack=pcmk"
            f" --cluster-name={CLUSTER} $DEV",
            timeout=600,
        )
        ctx.sh(
            "mount",
            f"mkdir -p {MOUNT} && mount -t ocfs2 $(cat {VOLUME}.dev) {MOUNT}"
            f" && echo pcmk-data > {PAYLOAD} && sync && cat {PAYLOAD}",
            timeout=600,
        )
        stack.state(ctx, "mounted")
        ctx.o2cb("status", "--json", label="status json mounted")
        ctx.o2cb("stop", label="stop refused")
        ctx.o2cb("offline", label="offline refused")
        ctx.sh("read back", f"cat {PAYLOAD}")
        stack.state(ctx, "refused")
        ctx.sh("umount", f"umount {MOUNT}", timeout=600)
        ctx.o2cb("stop")
        stack.state(ctx, "stopped")

        # dlm_controld started by someone else: left running by our stop.
        ctx.sh(
            "dlm_controld by hand",
            "modprobe dlm && (grep -q ' configfs ' /proc/mounts"
            " || mount -t configfs none /sys/kernel/config) && dlm_controld",
        )
        stack.wait_for(ctx, "dlm_controld by hand ready after", ["dlm_tool", "status"], 300)
        ctx.o2cb("start", label="start with their dlm_controld")
        ctx.o2cb("stop", label="stop with their dlm_controld")
        stack.state(ctx, "theirs stopped")
    finally:
        stack.stop_dlm_controld()
        stack.stop(corosync)
        ctx.sh("losetup", "losetup -D")
        ctx.note("seconds", round(time.monotonic() - began, 1))
    stack.state(ctx, "end")


def status_facts(step: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = json.loads(step["stdout"])
    return facts


SCENARIOS = [name for name in guest.SCENARIOS if name.startswith("pcmk:")]


if __name__ == "__main__":
    sys.exit(guest.main(sys.argv))
