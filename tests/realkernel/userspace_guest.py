"""Guest side of the userspace-stack scenarios on the real kernel.

Run in the virtual machine instead of ``guest.py`` (test_userspace.py boots
with this file as the guest script): it adds the ``userspace:*`` scenarios
to guest.py's and hands over to guest.py's runner.  The guest's root is the
host's, read-only, so the test-double daemons and cman_tool are installed
under /tmp and found through PATH.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

try:
    from . import guest
except ImportError:  # run as a script in the guest
    import guest  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[2]
DOUBLES_DIR = "/tmp/o2cb-rk-doubles"
DOUBLES_LOG = "/tmp/o2cb-rk-doubles.log"
REGION = "0123456789ABCDEF0123456789ABCDEF"
NODE = 1
# Python over 9p under emulation starts in seconds, not milliseconds.
DAEMON_TIMEOUT = "60"

# Open /dev/ocfs2_control as a second control daemon would and try this
# node number: the kernel refuses (EINVAL) a number that differs from the
# one a live daemon set with its completed handshake.
PROBE = r"""
import errno, json, os, sys
result = {}
try:
    fd = os.open("/dev/ocfs2_control", os.O_RDWR)
except OSError as error:
    print(json.dumps({"open": errno.errorcode.get(error.errno)})); sys.exit()
result["protocols"] = os.read(fd, 64).decode()
for message in ("T01\n", "SETN %08X\n" % int(sys.argv[1])):
    try:
        os.write(fd, message.encode())
        result[message.split()[0]] = "ok"
    except OSError as error:
        result[message.split()[0]] = errno.errorcode.get(error.errno)
os.close(fd)
print(json.dumps(result))
"""


def sysconfig(stack: str) -> str:
    return guest.sysconfig_text().replace("O2CB_STACK=o2cb", f"O2CB_STACK={stack}")


def prepare(ctx: guest.Context, stack: str) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from doubles import install_cman_tool, install_daemons

    directory = Path(DOUBLES_DIR)
    install_daemons(directory, stack)
    install_cman_tool(directory)
    if os.path.exists(DOUBLES_LOG):
        os.unlink(DOUBLES_LOG)
    with open("/etc/default/o2cb", "w") as handle:
        handle.write(sysconfig(stack))


def ours(ctx: guest.Context, *args: str, label: str = "", **env: str) -> dict[str, Any]:
    """Run our o2cb with the doubles on PATH, forked like the classic scenarios' verbs."""
    variables = {
        "PATH": f"{DOUBLES_DIR}:{guest.GUEST_PATH}",
        "O2CB_DAEMON_TIMEOUT": DAEMON_TIMEOUT,
        "CMAN_DOUBLE_CLUSTER": guest.CLUSTER,
        "O2CB_DOUBLE_LOG": DOUBLES_LOG,
        "O2CB_DOUBLE_NODE": str(NODE),
        **env,
    }
    argv = list(ctx.plan["commands"]["ours"]) + list(args)
    entry = ctx.plan["ours_entry"] if ctx.plan.get("fork_ours") else None
    return ctx.run(
        label or " ".join(args), argv, display=" ".join(["o2cb", *args]), entry=entry,
        env=variables,
    )


def probe(ctx: guest.Context, label: str, node: int) -> None:
    step = ctx.run(label, [sys.executable, "-c", PROBE, str(node)])
    try:
        ctx.note(label, json.loads(step["stdout"]))
    except ValueError:
        ctx.note(label, {"error": step["stdout"] + step["stderr"]})


def events() -> list[list[str]]:
    try:
        with open(DOUBLES_LOG) as handle:
            return [line.split(maxsplit=3)[1:] for line in handle.read().splitlines()]
    except OSError:
        return []


def region_path() -> str:
    top = guest.configfs_mountpoint() or "/sys/kernel/config"
    return f"{top}/cluster/{guest.CLUSTER}/heartbeat/{REGION}"


@guest.scenario("userspace:cman")
def cman_start_refuse_stop(ctx: guest.Context) -> None:
    prepare(ctx, "cman")
    ctx.snap("before")
    ours(ctx, "start")
    ctx.snap("started")
    probe(ctx, "probe other node", NODE + 1)
    probe(ctx, "probe same node", NODE)
    ours(ctx, "status", "--json", label="status")
    ctx.run("mkdir region", ["mkdir", region_path()])
    ours(ctx, "stop", label="stop with region")
    ctx.snap("refused")
    ctx.run("rmdir region", ["rmdir", region_path()])
    ours(ctx, "stop")
    ctx.snap("stopped")
    ctx.note("events", events())


# An ocfs2_controld that gives up at once.  A shell script, not the Python
# double's "fail" mode: under emulation Python takes seconds just to start,
# and a daemon is taken as started once it has stayed up O2CB_DAEMON_SETTLE.
FAILING_DAEMON = """#!/bin/sh
echo "ocfs2_controld: cannot join the cluster" >&2
exit 1
"""


@guest.scenario("userspace:cman-daemon-fails")
def cman_daemon_fails(ctx: guest.Context) -> None:
    prepare(ctx, "cman")
    failing = Path(DOUBLES_DIR) / "ocfs2_controld.cman"
    failing.write_text(FAILING_DAEMON)
    failing.chmod(0o755)
    ours(ctx, "start", O2CB_DAEMON_SETTLE="3")
    ctx.snap("after")
    ctx.note("events", events())


@guest.scenario("userspace:pcmk")
def pcmk_takes_the_corosync_way(ctx: guest.Context) -> None:
    # The ocfs2_controld double is installed, corosync is not running.
    prepare(ctx, "pcmk")
    ctx.snap("before")
    ours(ctx, "start")
    ctx.snap("after")


@guest.scenario("userspace:heartbeat2")
def heartbeat2_refused(ctx: guest.Context) -> None:
    prepare(ctx, "heartbeat2")
    ctx.snap("before")
    ours(ctx, "start")
    ctx.snap("after")


SCENARIOS = [name for name in guest.SCENARIOS if name.startswith("userspace:")]


if __name__ == "__main__":
    sys.exit(guest.main(sys.argv))
