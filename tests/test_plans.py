"""A verb is planned before anything changes; the same plan is shown or carried out.

The planner runs a verb's stack operations in planning mode: the machine
is read, nothing under the root changes, and each change is entered in a
titled step.  Carrying out that plan prints those titles and reaches the
state; a refusal the probe finds is the step's foreseen outcome, and
nothing before the plan is carried out changes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from faultbed import files, state
from runs import CLUSTER, CONFIG, o2cb, prepare
from simkernel import SimKernel

from o2cb_init import config
from o2cb_init.errors import StepError, StepFailed
from o2cb_init.plan import Part, Planner
from o2cb_init.report import Reporter
from o2cb_init.stacks import stack_for
from o2cb_init.stacks.base import Context
from o2cb_init.system import System

START_TITLES = [
    'Loading filesystem "configfs"',
    "Mounting configfs filesystem at /sys/kernel/config",
    'Loading stack plugin "o2cb"',
    'Loading filesystem "ocfs2_dlmfs"',
    "Mounting ocfs2_dlmfs filesystem at /dlm",
    'Setting cluster stack "o2cb"',
    f'Registering O2CB cluster "{CLUSTER}"',
    "Setting O2CB cluster timeouts ",
]
TITLE = re.compile(r"^(.*): (?:OK|Failed)$", re.MULTILINE)


def context_for(sim: SimKernel, out: io.StringIO, dry_run: bool = False) -> Context:
    system = System(root=str(sim.root), dry_run=dry_run)
    return Context(system, config.load(system, None), Reporter(out=out, err=out))


def start_operations(context: Context) -> Callable[[], None]:
    stack = stack_for(context)

    def operations() -> None:
        stack.load()
        stack.online(CLUSTER)

    return operations


@pytest.fixture
def configured(sim: SimKernel, two_node_cluster_conf: Callable[..., str]) -> SimKernel:
    prepare(sim, two_node_cluster_conf)
    sim.path("/dlm").mkdir()
    assert CONFIG in sim.path("/etc/default/o2cb").read_text()
    return sim


def test_planning_a_start_changes_nothing_and_carrying_it_out_starts(
    configured: SimKernel,
) -> None:
    before, tree = state(configured), files(configured.root)
    out = io.StringIO()
    context = context_for(configured, out)

    plan = context.planner.plan((True, start_operations(context)))

    assert plan.titles() == START_TITLES
    assert state(configured) == before and files(configured.root) == tree
    assert out.getvalue() == ""
    planned = [change for step in plan.steps for change in step.changes]
    assert "run modprobe configfs" in planned
    assert f"write '1' to /sys/kernel/config/cluster/{CLUSTER}/node/node1/local" in planned
    undos = {step.title: step.undos for step in plan.steps}
    assert undos['Loading filesystem "configfs"'] == ['loading module "configfs"']
    assert undos["Mounting configfs filesystem at /sys/kernel/config"] == [
        "mounting configfs at /sys/kernel/config"]
    assert f"creating /sys/kernel/config/cluster/{CLUSTER}" in undos[
        f'Registering O2CB cluster "{CLUSTER}"']

    context.planner.carry_out(plan)

    assert TITLE.findall(out.getvalue()) == START_TITLES
    assert "would" not in out.getvalue()
    assert o2cb(configured, "status").exit_code == 0


def test_a_refusal_is_foreseen_and_nothing_changes_before_it(configured: SimKernel) -> None:
    assert o2cb(configured, "start").exit_code == 0
    configured.mount_ocfs2_volume(CLUSTER)
    before = state(configured)
    out = io.StringIO()
    context = context_for(configured, out)
    stack = stack_for(context)

    plan = context.planner.plan((False, lambda: stack.offline(CLUSTER)))

    assert plan.titles() == [f"Stopping O2CB cluster {CLUSTER}"]
    assert isinstance(plan.steps[-1].foreseen, StepError)
    assert state(configured) == before
    with pytest.raises(StepFailed):
        context.planner.carry_out(plan)
    assert TITLE.findall(out.getvalue()) == [f"Stopping O2CB cluster {CLUSTER}"]
    assert state(configured) == before
    assert o2cb(configured, "status").exit_code == 0


def test_the_dry_run_shows_the_plan_a_real_run_carries_out(configured: SimKernel) -> None:
    shown, done = io.StringIO(), io.StringIO()
    dry = context_for(configured, shown, dry_run=True)
    dry.planner.carry_out(dry.planner.plan((True, start_operations(dry))))
    real = context_for(configured, done)
    real.planner.carry_out(real.planner.plan((True, start_operations(real))))

    dry_titles = re.findall(r"^(.*): (?:OK|dry run)$", shown.getvalue(), re.MULTILINE)
    assert dry_titles == TITLE.findall(done.getvalue()) == START_TITLES


def test_a_change_outside_a_step_is_refused_while_planning(configured: SimKernel) -> None:
    system = System(root=str(configured.root))
    planner = Planner(system, Reporter())
    planner.building = Part(all_or_nothing=True)
    try:
        with pytest.raises(RuntimeError, match="outside a step"):
            system.mkdir("/run/o2cb")
    finally:
        planner.building = None
    assert not configured.path("/run/o2cb").exists()
