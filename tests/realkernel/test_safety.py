"""Crashes and races on Debian's real kernel: a refused write, a SIGKILL, two starts,
a userdlm client holding /dlm.

One boot runs the ``safety:*`` scenarios of safety_guest.py with our ``o2cb``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import harness, safety_guest
from .harness import Boot
from .test_realkernel import EXPECTED_CLUSTER

pytestmark = pytest.mark.realkernel


@pytest.fixture(scope="module")
def boot() -> Boot:
    harness.require_bed()
    return harness.boot(
        "ours", safety_guest.SCENARIOS, guest_script=Path(safety_guest.__file__).resolve()
    )


def kernel(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {
        "modules": sorted(module["name"] if isinstance(module, dict) else module
                          for module in snapshot["modules"]),
        "mounts": snapshot["mounts"],
        "configfs": snapshot["configfs"],
    }


def test_a_refused_local_write_leaves_the_kernel_as_before(boot: Boot) -> None:
    result = boot.scenario("safety:refused-local")
    start = result.step("start")
    result.check(start["rc"] == 1, f"start exited {start['rc']}")
    # Besides check's warnings (a stock Debian kernel has panic_on_oops 0).
    errors = [line for line in start["stderr"].splitlines()
              if not line.startswith("o2cb: warning:")]
    result.check(len(errors) == 1, f"one error line: {start['stderr']!r}")
    result.check(kernel(result.snap("after")) == kernel(result.snap("before")),
                 "modules, mounts or configfs differ from before the start")


def test_a_start_killed_half_way_then_started_gives_the_full_cluster(boot: Boot) -> None:
    result = boot.scenario("safety:kill-start")
    result.check(not result.notes["killed"]["finished_before_kill"],
                 "the start finished before it could be killed")
    again = result.step("start after kill")
    result.check(again["rc"] == 0, f"start after kill: {again['stderr']}")
    result.check(result.snap("restarted")["configfs"] == EXPECTED_CLUSTER,
                 "the cluster is not the full cluster")
    result.check(result.step("stop")["rc"] == 0, "stop failed")
    result.check(kernel(result.snap("stopped")) == kernel(result.snap("before")),
                 "stop did not reach the state before the start")


def test_two_concurrent_starts_give_one_cluster(boot: Boot) -> None:
    result = boot.scenario("safety:concurrent-starts")
    starts = result.notes["starts"]
    result.check([start["rc"] for start in starts] == [0, 0], f"starts: {starts}")
    result.check(result.snap("started")["configfs"] == EXPECTED_CLUSTER, "not one full cluster")
    result.check(kernel(result.snap("stopped")) == kernel(result.snap("before")),
                 "stop did not reach the state before")


def test_a_dlm_holder_refuses_stop_until_force_offline_ends_it(boot: Boot) -> None:
    result = boot.scenario("safety:dlm-holder")
    holder = result.notes["holder"]
    result.check(holder["ready"], f"the userdlm client could not take its lock: {holder}")
    refused = result.step("stop refused")
    result.check(refused["rc"] == 1, f"stop exited {refused['rc']}: {refused['stderr']}")
    result.check(refused["stdout"].splitlines() == ["Clean userdlm domains: Failed"],
                 f"stop output: {refused['stdout']!r}")
    result.check(len(refused["stderr"].splitlines()) == 1
                 and f"pid {holder['pid']}" in refused["stderr"],
                 f"one error line naming the holder: {refused['stderr']!r}")
    result.check(result.notes["after refused"]["alive"], "the holder was ended by stop")
    result.check(kernel(result.snap("after refused")) == kernel(result.snap("held")),
                 "the refused stop changed modules, mounts or configfs")
    forced = result.step("force-offline")
    result.check(forced["rc"] == 0, f"force-offline: {forced['stdout']} {forced['stderr']}")
    result.check(forced["stdout"].startswith("Clean userdlm domains: OK"),
                 f"force-offline output: {forced['stdout']!r}")
    result.check(result.notes["after force"]["ended"], "force-offline left the holder running")
    result.check(result.step("stop")["rc"] == 0, "stop after force-offline failed")
    result.check(kernel(result.snap("stopped")) == kernel(result.snap("before")),
                 "stop did not reach the state before the start")
