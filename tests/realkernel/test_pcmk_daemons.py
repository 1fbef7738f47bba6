"""pcmk on Debian's real corosync and dlm_controld, one node, nothing a double.

One boot per kernel runs the ``pcmk:daemons`` scenario of
pcmk_daemons_guest.py with our ``o2cb``; each test reads one case of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import harness, pcmk_daemons_guest
from .harness import Boot, ScenarioResult

pytestmark = pytest.mark.realkernel

PCMK = harness.plan(
    "pcmk-daemons",
    "ours",
    pcmk_daemons_guest.SCENARIOS,
    fixture="pcmk_boot",
    guest_script=Path(pcmk_daemons_guest.__file__).resolve(),
)


@pytest.fixture(scope="session")
def pcmk_boot(kernel: harness.Kernel, boot_queue: harness.BootQueue) -> Boot:
    return boot_queue.get(kernel, PCMK)


@pytest.fixture
def result(pcmk_boot: Boot) -> ScenarioResult:
    return pcmk_boot.scenario("pcmk:daemons")


def modules(result: ScenarioResult, label: str) -> list[str]:
    return sorted(result.snap(label)["modules"])


def daemons(result: ScenarioResult, label: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = result.notes[f"{label} daemons"]
    return found


def test_corosync_down_is_refused_with_nothing_loaded(result: ScenarioResult) -> None:
    start = result.step("start corosync down")
    result.check(start["rc"] == 1, f"start exited {start['rc']}: {start['stderr']}")
    result.check(len(start["stderr"].splitlines()) == 1
                 and "corosync, which is not running" in start["stderr"],
                 f"one line naming corosync: {start['stderr']!r}")
    result.check(modules(result, "down after") == modules(result, "down before"),
                 "the refused start loaded modules")
    result.check(result.snap("down after")["mounts"] == result.snap("down before")["mounts"],
                 "the refused start mounted something")


def test_a_cluster_name_mismatch_is_refused_with_nothing_loaded(result: ScenarioResult) -> None:
    result.check(result.notes["corosync quorate after"] is not None, "corosync never quorate")
    start = result.step("start name mismatch")
    result.check(start["rc"] == 6, f"start exited {start['rc']}: {start['stderr']}")
    result.check('corosync runs cluster "ocfs2", not "other"' in start["stderr"],
                 f"the reason: {start['stderr']!r}")
    result.check(modules(result, "mismatch after") == modules(result, "mismatch before"),
                 "the refused start loaded modules")


def test_start_brings_up_dlm_controld_and_a_pcmk_volume_mounts(result: ScenarioResult) -> None:
    start = result.step("start")
    result.check(start["rc"] == 0, f"start: {start['stdout']} {start['stderr']}")
    result.check("Starting dlm_controld: OK" in start["stdout"].splitlines(),
                 f"start output: {start['stdout']!r}")
    started = result.snap("started")
    result.check(started["sys_fs_ocfs2"]["cluster_stack"] == "pcmk", "cluster_stack not pcmk")
    result.check({"ocfs2_stack_user", "ocfs2", "ocfs2_dlmfs"} <= set(started["modules"]),
                 f"modules: {started['modules']}")
    result.check(["ocfs2_dlmfs", "/dlm", "ocfs2_dlmfs"] in started["mounts"], "/dlm not mounted")
    # dlm_controld may run as two processes (a daemonized one and its helper).
    result.check(daemons(result, "started")["dlm_controld"] != [], "no dlm_controld")
    status = result.step("status")
    result.check(status["rc"] == 0, f"status: {status['stdout']}")
    facts = json.loads(result.step("status json")["stdout"])
    result.check(facts["online"] is True and facts["corosync"]["quorate"] is True,
                 f"status facts: {facts}")
    result.check(facts["dlm_controld"]["pids"]
                 == sorted(daemons(result, "started")["dlm_controld"]),
                 "status shows other dlm_controld pids")
    result.check(result.step("mount")["rc"] == 0, f"mount: {result.step('mount')['stdout']}")
    lockspaces = result.notes["mounted lockspaces"]
    result.check(len(lockspaces) == 1, f"lockspaces: {lockspaces}")
    mounted = json.loads(result.step("status json mounted")["stdout"])
    shown = mounted["lockspaces"]
    result.check(len(shown) == 1 and shown[0]["name"] == lockspaces[0]
                 and shown[0]["mountpoint"] == pcmk_daemons_guest.MOUNT
                 and shown[0]["members"] == [1],
                 f"status lockspaces: {shown}")


def test_stop_and_offline_are_refused_under_the_volume(result: ScenarioResult) -> None:
    for label in ("stop refused", "offline refused"):
        step = result.step(label)
        result.check(step["rc"] == 1, f"{label} exited {step['rc']}: {step['stdout']}")
        result.check("is still mounted on" in step["stderr"], f"{label}: {step['stderr']!r}")
    result.check(result.step("read back")["stdout"].strip() == "pcmk-data", "the data changed")
    result.check(daemons(result, "refused") == daemons(result, "mounted"),
                 "a daemon was stopped under the volume")
    result.check(modules(result, "refused") == modules(result, "mounted"), "modules changed")


def test_stop_after_umount_unloads_and_leaves_corosync(result: ScenarioResult) -> None:
    stop = result.step("stop")
    result.check(stop["rc"] == 0, f"stop: {stop['stdout']} {stop['stderr']}")
    result.check("Stopping dlm_controld: OK" in stop["stdout"].splitlines(),
                 f"stop output: {stop['stdout']!r}")
    result.check(not [m for m in modules(result, "stopped") if m.startswith("ocfs2")],
                 f"ocfs2 modules left: {modules(result, 'stopped')}")
    after = daemons(result, "stopped")
    result.check(after["dlm_controld"] == [], "dlm_controld, which we started, still runs")
    result.check(after["corosync"] == daemons(result, "started")["corosync"],
                 "corosync was stopped or restarted")


def test_a_dlm_controld_started_by_others_is_left_running(result: ScenarioResult) -> None:
    start = result.step("start with their dlm_controld")
    result.check(start["rc"] == 0, f"start: {start['stdout']} {start['stderr']}")
    result.check("dlm_controld" not in start["stdout"], "start touched their dlm_controld")
    stop = result.step("stop with their dlm_controld")
    result.check(stop["rc"] == 0, f"stop: {stop['stdout']} {stop['stderr']}")
    result.check(daemons(result, "theirs stopped")["dlm_controld"] != [],
                 "their dlm_controld was stopped")
