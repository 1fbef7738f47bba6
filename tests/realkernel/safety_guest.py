"""Guest side of the crash and race scenarios on the real kernel.

Run in the virtual machine instead of ``guest.py`` (test_safety.py boots
with this file as the guest script): it adds the ``safety:*`` scenarios to
guest.py's and hands over to guest.py's runner.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

try:
    from . import guest
except ImportError:  # run as a script in the guest
    import guest  # type: ignore[no-redef]

# An address no interface of the guest has: o2net cannot listen on it, so the
# kernel refuses local=1 on the node that carries it, the last write of start.
UNREACHABLE = "10.99.99.1"


def spawn_ours(ctx: guest.Context, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PATH=guest.GUEST_PATH)
    return subprocess.Popen(
        [*ctx.plan["commands"]["ours"], *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def cluster_dir() -> str:
    return f"{guest.configfs_mountpoint() or '/sys/kernel/config'}/cluster/{guest.CLUSTER}"


@guest.scenario("safety:refused-local")
def refused_local_write(ctx: guest.Context) -> None:
    ctx.snap("before")
    with open("/etc/ocfs2/cluster.conf", "w") as handle:
        handle.write(guest.CLUSTER_CONF.replace("127.0.0.1", UNREACHABLE))
    try:
        ctx.o2cb("start")
    finally:
        guest.write_config()
    ctx.snap("after")


@guest.scenario("safety:kill-start")
def killed_start(ctx: guest.Context) -> None:
    ctx.snap("before")
    process = spawn_ours(ctx, "start")
    # Kill it as soon as the cluster has been made, before it is complete.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if os.path.isdir(cluster_dir()):
            break
        time.sleep(0.01)
    finished = process.poll() is not None
    process.send_signal(signal.SIGKILL)
    process.communicate()
    ctx.note("killed", {"finished_before_kill": finished, "rc": process.returncode})
    ctx.snap("killed")
    ctx.o2cb("status", label="status after kill")
    ctx.o2cb("start", label="start after kill")
    ctx.snap("restarted")
    ctx.o2cb("stop")
    ctx.snap("stopped")


@guest.scenario("safety:concurrent-starts")
def concurrent_starts(ctx: guest.Context) -> None:
    ctx.snap("before")
    processes = [spawn_ours(ctx, "start") for _ in range(2)]
    outcomes = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        outcomes.append({"rc": process.returncode, "stdout": out, "stderr": err})
    ctx.note("starts", outcomes)
    ctx.snap("started")
    ctx.o2cb("stop")
    ctx.snap("stopped")


# A process that keeps the mounted ocfs2_dlmfs busy: its working directory
# is /dlm.  (A userdlm domain cannot be made here: with local heartbeat the
# kernel's dlm joins a domain only while a heartbeat region runs, and then
# the stop is refused for the region.)
DLM_HOLDER = """
import os, time
os.chdir("/dlm")
print("holding", flush=True)
time.sleep(600)
"""


@guest.scenario("safety:dlm-holder")
def dlm_holder(ctx: guest.Context) -> None:
    ctx.snap("before")
    ctx.o2cb("start")
    holder = subprocess.Popen([sys.executable, "-c", DLM_HOLDER], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert holder.stdout is not None
    ready = holder.stdout.readline().strip() == "holding"
    ctx.note("holder", {"pid": holder.pid, "ready": ready,
                        "stderr": "" if ready else holder.communicate(timeout=30)[1]})
    ctx.snap("held")
    ctx.o2cb("stop", label="stop refused", exec_=True)  # the installed command
    ctx.note("after refused", {"alive": holder.poll() is None,
                               "domains": sorted(os.listdir("/dlm")) if os.path.isdir("/dlm")
                               else []})
    ctx.snap("after refused")
    ctx.o2cb("force-offline")
    try:
        holder.wait(timeout=30)
    except subprocess.TimeoutExpired:
        holder.kill()
        holder.wait()
        ctx.note("after force", {"ended": False})
    else:
        ctx.note("after force", {"ended": True, "rc": holder.returncode})
    ctx.o2cb("stop")
    ctx.snap("stopped")


SCENARIOS = [name for name in guest.SCENARIOS if name.startswith("safety:")]


if __name__ == "__main__":
    sys.exit(guest.main(sys.argv))
