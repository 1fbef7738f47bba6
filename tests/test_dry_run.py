"""--dry-run prints the plan a real run carries out: the same steps, the same changes.

A real run carries out the plan it builds first, so the titles can differ
only where carrying it out fails where the plan foresaw success, or the
other way round; what the plan predicts (model.py) is what is tested.

For every verb that changes the machine and every starting state the
simulated kernel can be put in, the titles of a dry run are those of the
real run that follows it, their exit codes agree, the dry run changes no
file under the root, and its "would" lines are the changes the real run
plans.  Each step the real run carries out makes exactly the changes it
planned (recorded by the seam, System.made), except the steps whose need
is asked at their turn (ASKED_AT_THEIR_TURN): a plan cannot know for sure
whether the kernel still holds a module, or what a killed daemon left.

The states are enumerated, not listed: each kernel profile of the
simulated kernel, o2cb and heartbeat2, each of the base states (nothing
loaded, drivers loaded, cluster online, a volume mounted), and the partial
clusters a `start` killed at each of its kill points leaves (the points
are counted from a real start, so a new change in start is a new state
here).  Each state is built once, by the command line in a subprocess,
and copied for every verb.  cman and pcmk run with the daemon doubles of
test_userspace_stacks.py, their states built for each case.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from faultbed import files
from runs import CLUSTER, CONFIG, o2cb, o2cb_process
from simkernel import PROFILES, SimKernel, faults, two_node_cluster_conf
from simkernel.engine import STATE_FILE
from simkernel.engine import Kernel as EngineKernel
from test_userspace_stacks import Bed, make_bed  # noqa: F401 (a fixture)

from o2cb_init.plan import Plan, Planner, Step

TITLE = re.compile(r"^(?P<title>.*): (?:OK|dry run|Failed)$")
VERBS = ["start", "stop", "restart", "force-reload", "load", "unload", "online", "offline",
         "force-offline", "reload"]
# Stacks whose whole life the simulated kernel carries (cman and pcmk need
# control daemons: test_userspace_stacks.py runs them with doubles).
STACKS = ["o2cb", "heartbeat2"]
# The kernels each stack runs on; on the others only its refusal is compared.
RUNS_ON = {"heartbeat2": ("hbmode2007",)}


# The steps whose need is asked when they are carried out, by title.
ASKED_AT_THEIR_TURN = ('Unloading module "', "Removing cluster ")


def titles(stdout: str) -> list[str]:
    return [m.group("title") for line in stdout.splitlines() if (m := TITLE.match(line))]


def woulds(stdout: str) -> list[str]:
    return [line.removeprefix("  would ") for line in stdout.splitlines()
            if line.startswith("  would ")]


@dataclass
class Carried:
    """What one real run planned, and what each step it carried out changed."""

    plans: list[Plan]
    steps: list[tuple[Step, list[str]]]

    def planned(self) -> list[str]:
        return [change for plan in self.plans for step in plan.steps if step.expected
                for change in step.changes]


@pytest.fixture
def carried(monkeypatch: pytest.MonkeyPatch) -> Carried:
    """Records the real runs' plans, and the changes the seam made in each step."""
    record = Carried([], [])
    plan, carry_out = Planner.plan, Planner._carry_out

    def planning(self: Planner, *parts: object) -> Plan:
        built = plan(self, *parts)  # type: ignore[arg-type]
        if not self.system.dry_run:
            record.plans.append(built)
        return built

    def carrying_out(self: Planner, step: Step) -> None:
        mark = len(self.system.made)
        try:
            carry_out(self, step)
        finally:
            if not self.system.dry_run and step.note is None:
                record.steps.append((step, [str(c) for c in self.system.made[mark:]]))

    monkeypatch.setattr(Planner, "plan", planning)
    monkeypatch.setattr(Planner, "_carry_out", carrying_out)
    return record


def check_changes(dry_stdout: str, record: Carried) -> None:
    """The dry run's would-lines are the real run's plan, and every step the real run
    carried out made what it planned (but the steps asked at their turn)."""
    assert woulds(dry_stdout) == record.planned(), (dry_stdout, record.planned())
    for step, made in record.steps:
        if step.needed is not None:
            assert (step.title or "").startswith(ASKED_AT_THEIR_TURN), step.title
            continue
        assert made == step.changes, (step.title, step.changes, made)


# -- the starting states ---------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """How to reach one starting state from a fresh machine."""

    stack: str
    profile: str
    name: str
    verbs: tuple[str, ...]  # run in turn, each must succeed
    fault: str | None = None  # O2CB_SIM_FAULT of a last, killed start
    volume: bool = False
    moved_on: bool = False  # cluster.conf changed since: a node added, the peer removed

    @property
    def id(self) -> str:
        return f"{self.stack}-{self.profile}-{self.name}"


def configure(sim: SimKernel, stack: str) -> None:
    sim.write_config(CONFIG.replace("O2CB_STACK=o2cb", f"O2CB_STACK={stack}"))
    sim.write_cluster_conf(two_node_cluster_conf())


@functools.cache
def start_points(stack: str, profile: str) -> dict[str, int]:
    """The changes a start makes on a fresh machine, counted per kind."""
    with tempfile.TemporaryDirectory() as directory:
        sim = SimKernel.create(Path(directory) / "root", profile=profile)
        configure(sim, stack)
        run = o2cb_process(sim, "start", fault="count")
        assert run.exit_code == 0, run.stderr
        return faults.counts(sim.root)


def starts() -> Iterator[Start]:
    for stack in STACKS:
        for profile in PROFILES:
            yield Start(stack, profile, "nothing-loaded", ())
            if profile not in RUNS_ON.get(stack, PROFILES):
                continue
            yield Start(stack, profile, "drivers-loaded", ("load",))
            yield Start(stack, profile, "online", ("start",))
            yield Start(stack, profile, "volume-mounted", ("start",), volume=True)
    # What reload applies: the files moved on since the cluster came up.
    yield Start("o2cb", "modern", "layout-moved-on", ("start",), moved_on=True)
    # Partial clusters: a start killed before each of its changes.
    for kind, count in sorted(start_points("o2cb", "modern").items()):
        for number in range(1, count + 1):
            yield Start("o2cb", "modern", f"start-killed-at-{kind}-{number}", (),
                        fault=f"{kind}:{number}:kill")


STARTS = {start.id: start for start in starts()}


def build(start: Start, root: Path) -> None:
    sim = SimKernel.create(root, profile=start.profile)
    configure(sim, start.stack)
    for verb in start.verbs:
        run = o2cb_process(sim, verb)
        assert run.exit_code == 0, (start.id, verb, run.stderr)
    if start.fault:
        killed = o2cb_process(sim, "start", fault=start.fault)
        assert killed.exit_code < 0, (start.id, killed.stderr)  # SIGKILLed
        faults.reset(sim.root)
    if start.volume:
        sim.mount_ocfs2_volume(CLUSTER)
    if start.moved_on:
        this_node, _peer, cluster = two_node_cluster_conf().split("\n\n")
        sim.write_cluster_conf(f"{this_node}\n\n{cluster}"
                               + "\nnode:\n\tip_port = 7777\n\tip_address = 10.0.0.3\n"
                               f"\tnumber = 2\n\tname = node3\n\tcluster = {CLUSTER}\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Start], Path]:
    """The root of each starting state, built on first use."""
    base = tmp_path_factory.mktemp("starts")
    roots: dict[str, Path] = {}

    def get(start: Start) -> Path:
        if start.id not in roots:
            root = base / start.id
            build(start, root)
            roots[start.id] = root
        return roots[start.id]

    return get


def copy_root(source: Path, target: Path) -> None:
    """A copy of a simulated machine at another root: its state names its root."""
    shutil.rmtree(target)
    shutil.copytree(source, target, symlinks=True)
    state_file = target / STATE_FILE
    text = state_file.read_text(encoding="utf-8")
    state_file.write_text(text.replace(json.dumps(str(source))[1:-1],
                                       json.dumps(str(target))[1:-1]), encoding="utf-8")
    EngineKernel(target).save()


# -- the test --------------------------------------------------------------------


def cases() -> Iterator[object]:
    for start in STARTS.values():
        for verb in VERBS:
            yield pytest.param(start.id, verb, id=f"{start.id}-{verb}")


@pytest.mark.parametrize(("start_id", "verb"), list(cases()))
def test_dry_run_titles_are_the_real_run_titles(
    make_sim: Callable[..., SimKernel], built: Callable[[Start], Path], start_id: str, verb: str,
    carried: Carried,
) -> None:
    start = STARTS[start_id]
    sim = make_sim(profile=start.profile)
    copy_root(built(start), sim.root)
    before = files(sim.root)
    dry = o2cb(sim, "--dry-run", verb)
    assert files(sim.root) == before, "the dry run changed the machine"
    assert "Traceback" not in dry.stderr
    real = o2cb(sim, verb)
    assert dry.exit_code == real.exit_code, (dry.stdout, dry.stderr, real.stdout, real.stderr)
    assert titles(dry.stdout) == titles(real.stdout), (dry.stdout, real.stdout)
    check_changes(dry.stdout, carried)


def test_every_kind_of_state_is_enumerated() -> None:
    """Each profile, each base state and at least one kill point of each kind of change."""
    names = {start.name for start in STARTS.values()}
    assert {"nothing-loaded", "drivers-loaded", "online", "volume-mounted"} <= names
    assert {start.profile for start in STARTS.values()} == set(PROFILES)
    killed = {name.split("-")[3] for name in names if name.startswith("start-killed-at-")}
    assert {"modprobe", "mount", "configfs"} <= killed


@pytest.mark.parametrize("verb", ["enable", "disable"])
def test_dry_run_of_the_configuration_verbs(
    make_sim: Callable[..., SimKernel], verb: str,
) -> None:
    sim = make_sim()
    configure(sim, "o2cb")
    before = files(sim.root)
    dry = o2cb(sim, "--dry-run", verb)
    assert files(sim.root) == before
    real = o2cb(sim, verb)
    assert dry.exit_code == real.exit_code == 0, (dry.stderr, real.stderr)
    assert titles(dry.stdout) == titles(real.stdout)


# -- the stacks with control daemons -----------------------------------------------
# Their daemons run from the root they were started for, so these states are
# built for each case (with the test doubles of test_userspace_stacks.py).

DAEMON_STACKS = ["cman", "pcmk"]
DAEMON_STATES = {"nothing-loaded": (), "drivers-loaded": ("load",), "online": ("start",)}


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("state_name", list(DAEMON_STATES))
@pytest.mark.parametrize("stack", DAEMON_STACKS)
def test_dry_run_titles_with_control_daemons(
    make_bed: Callable[..., Bed], stack: str, state_name: str, verb: str,  # noqa: F811
    carried: Carried,
) -> None:
    bed = make_bed(stack)
    for step in DAEMON_STATES[state_name]:
        assert bed.o2cb(step).exit_code == 0
    running = bed.running()
    carried.plans.clear()
    carried.steps.clear()
    before = files(bed.sim.root)
    dry = bed.o2cb("--dry-run", verb)
    assert files(bed.sim.root) == before, "the dry run changed the machine"
    assert bed.running() == running, "the dry run started or stopped a daemon"
    real = bed.o2cb(verb)
    assert dry.exit_code == real.exit_code, (dry.text, real.text)
    assert titles(dry.stdout) == titles(real.stdout), (dry.stdout, real.stdout)
    check_changes(dry.stdout, carried)
