"""The userspace stacks on Debian's real kernel, with test-double daemons.

One boot runs the ``userspace:*`` scenarios of userspace_guest.py with our
``o2cb`` (the reference script cannot run them: Debian ships no
ocfs2_controld).  The doubles are tests/doubles: o2cb_controld creates the
cluster in configfs, ocfs2_controld does the /dev/ocfs2_control handshake
and holds the device.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import harness, userspace_guest
from .harness import Boot, ScenarioResult

pytestmark = pytest.mark.realkernel

CLUSTER_DIR = f"cluster/{userspace_guest.guest.CLUSTER}/"


USERSPACE = harness.plan(
    "userspace",
    "ours",
    userspace_guest.SCENARIOS,
    fixture="boot",
    guest_script=Path(userspace_guest.__file__).resolve(),
)


@pytest.fixture(scope="session")
def boot(kernel: harness.Kernel, boot_queue: harness.BootQueue) -> Boot:
    return boot_queue.get(kernel, USERSPACE)


def daemons(result: ScenarioResult, label: str) -> list[str]:
    """Daemon processes in a snapshot, by program name (comm is cut to 15 characters)."""
    return sorted(comm.split(".")[0] for comm in result.snap(label)["daemons"])


def test_cman_start_brings_up_both_daemons_and_the_kernel_takes_the_handshake(
    boot: Boot,
) -> None:
    result = boot.scenario("userspace:cman")
    start = result.step("start")
    result.check(start["rc"] == 0, f"start failed: {start['stderr']}")
    for line in ("Starting o2cb_controld: OK", "Starting ocfs2_controld: OK",
                 'Setting cluster stack "cman": OK'):
        result.check(line in start["stdout"].splitlines(), f"no line {line!r}")
    result.check(daemons(result, "started") == ["o2cb_controld", "ocfs2_controld"],
                 "both daemons should run after start")
    started = result.snap("started")
    result.check(CLUSTER_DIR in started["configfs"], "o2cb_controld made no cluster")
    result.check(started["sys_fs_ocfs2"]["cluster_stack"] == "cman", "cluster_stack not cman")
    result.check("ocfs2_stack_user" in started["modules"], "ocfs2_stack_user not loaded")
    other = result.notes["probe other node"]
    result.check(other.get("protocols", "").split() == ["T01"], f"protocols: {other}")
    result.check(other.get("SETN") == "EINVAL",
                 f"a second opener's other node number should be refused: {other}")
    same = result.notes["probe same node"]
    result.check(same.get("SETN") == "ok", f"the same node number should be accepted: {same}")
    status = json.loads(result.step("status")["stdout"])
    result.check(status["online"] is True and status["daemons"]["ocfs2_controld"]["running"],
                 f"status --json: {status}")


def test_cman_stop_is_refused_while_a_heartbeat_region_exists(boot: Boot) -> None:
    result = boot.scenario("userspace:cman")
    refused = result.step("stop with region")
    result.check(refused["rc"] == 1, f"stop with a region exited {refused['rc']}")
    result.check("heartbeat region" in refused["stderr"], f"reason: {refused['stderr']}")
    result.check(daemons(result, "refused") == ["o2cb_controld", "ocfs2_controld"],
                 "both daemons must stay after a refused stop")
    result.check("ocfs2_stack_user" in result.snap("refused")["modules"], "plugin unloaded")


def test_cman_stop_stops_ocfs2_controld_first_and_unloads(boot: Boot) -> None:
    result = boot.scenario("userspace:cman")
    stop = result.step("stop")
    result.check(stop["rc"] == 0, f"stop failed: {stop['stderr']}")
    lines = stop["stdout"].splitlines()
    result.check(
        lines.index("Stopping ocfs2_controld: OK") < lines.index("Stopping o2cb_controld: OK"),
        "ocfs2_controld must stop first",
    )
    stopped = [event[0] for event in result.notes["events"] if event[2] == "stop"]
    result.check(stopped == ["ocfs2_controld", "o2cb_controld"], f"stop order: {stopped}")
    after = result.snap("stopped")
    result.check(daemons(result, "stopped") == [], "daemons left running")
    result.check("ocfs2_stack_user" not in after["modules"], "ocfs2_stack_user still loaded")
    result.check(CLUSTER_DIR not in after["configfs"], "cluster left in configfs")


def test_a_daemon_that_fails_to_start_leaves_nothing_running(boot: Boot) -> None:
    result = boot.scenario("userspace:cman-daemon-fails")
    start = result.step("start")
    result.check(start["rc"] == 1, f"start exited {start['rc']}")
    result.check("Starting ocfs2_controld: Failed" in start["stdout"], "no failed step")
    result.check(daemons(result, "after") == [], "a daemon was left running")
    result.check(CLUSTER_DIR not in result.snap("after")["configfs"], "cluster left behind")


def test_pcmk_on_a_kernel_with_recovery_callbacks_needs_corosync_not_ocfs2_controld(
        boot: Boot) -> None:
    """These kernels' DLM has recovery callbacks: pcmk runs on corosync and
    dlm_controld even where an ocfs2_controld is installed (the ocfs2_controld
    way is for kernels without them, covered on the simulated kernel)."""
    result = boot.scenario("userspace:pcmk")
    start = result.step("start")
    result.check(start["rc"] == 1, f"start exited {start['rc']}")
    result.check("corosync" in start["stderr"], f"reason: {start['stderr']}")
    result.check(daemons(result, "after") == [], "a daemon was started")
    before, after = result.snap("before"), result.snap("after")
    result.check(after["modules"] == before["modules"], "modules loaded")


def test_heartbeat2_is_refused_on_a_stack_glue_kernel_and_loads_nothing(boot: Boot) -> None:
    result = boot.scenario("userspace:heartbeat2")
    start = result.step("start")
    result.check(start["rc"] == 6, f"start exited {start['rc']}")
    result.check("pcmk" in start["stderr"], f"reason: {start['stderr']}")
    result.check(result.snap("after")["modules"] == result.snap("before")["modules"],
                 "modules changed")
