"""The kernel model's predictions, held against the simulated kernel.

Each case plans a few changes on a planning System (the model enters what
they leave in its planned state), reads the machine as the plan sees it,
then makes the same changes for real on the simulated kernel and reads it
again: the two readings must agree.  What is read is what the parts ask:
loaded modules and whether each is in use, file systems, mounts, stack
plugins, cluster_stack and the o2nm tree in configfs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from simkernel import SimKernel

from o2cb_init.changes import MKDIR, RMDIR, RUN, WRITE, Change
from o2cb_init.configfs import Configfs
from o2cb_init.kernel import CLUSTER_STACK_FILE, Kernel
from o2cb_init.model import KernelModel, ModuleIndex
from o2cb_init.overlay import PlannedState
from o2cb_init.system import System

CONFIGFS = "/sys/kernel/config"
CLUSTER = f"{CONFIGFS}/cluster/ocfs2"


def reading(system: System) -> dict[str, Any]:
    kernel = Kernel(system)
    mountpoint = kernel.configfs_mountpoint()
    configfs = Configfs(system, mountpoint)
    return {
        "modules": {name: module.in_use for name, module in kernel.modules().items()},
        "filesystems": kernel.filesystems() & {"configfs", "ocfs2_dlmfs", "ocfs2"},
        "mounts": sorted((m.mountpoint.removeprefix(system.root.rstrip("/")), m.fstype)
                         for m in kernel.mounts()),
        "plugins": sorted(kernel.loaded_plugins()),
        "cluster_stack": system.read_attribute(CLUSTER_STACK_FILE),
        "configfs": system.is_dir(mountpoint),
        "o2nm": configfs.available(),
        "clusters": [target.name for target in configfs.clusters()],
        "heartbeat_mode": system.exists(f"{mountpoint}/cluster/heartbeat_mode"),
    }


def planned_then_real(sim: SimKernel, changes: list[Change]) -> tuple[dict[str, Any],
                                                                       dict[str, Any]]:
    """The machine as the model predicts it after ``changes``, then as they leave it."""
    planning = System(root=str(sim.root))
    planning.state = PlannedState()
    model = KernelModel(planning, planning.state)
    for change in changes:
        assert model.apply(change).ok, change
    predicted = reading(planning)
    real = System(root=str(sim.root))
    for change in changes:
        make(real, change)
    return predicted, reading(real)


def make(system: System, change: Change) -> None:
    if change.kind == RUN:
        result = system.run(list(change.argv))
        assert result.ok, (change, result.stderr)
    elif change.kind == MKDIR:
        system.mkdir(change.path)
    elif change.kind == RMDIR:
        system.rmdir(change.path)
    elif change.kind == WRITE:
        system.write_attribute(change.path, change.value)


def run(*argv: str) -> Change:
    return Change(RUN, argv=argv)


def mount(sim: SimKernel, fstype: str, mountpoint: str) -> Change:
    return run("mount", "-t", fstype, fstype, str(sim.path(mountpoint)))


def loaded_stack(sim: SimKernel) -> list[Change]:
    return [run("modprobe", "configfs"), mount(sim, "configfs", CONFIGFS),
            run("modprobe", "ocfs2_stack_o2cb"), run("modprobe", "ocfs2_dlmfs"),
            mount(sim, "ocfs2_dlmfs", "/dlm")]


CASES: dict[str, Callable[[SimKernel], list[Change]]] = {
    "configfs loads and makes its mount point": lambda sim: [run("modprobe", "configfs")],
    "the stack glue makes /sys/fs/ocfs2": lambda sim: [run("modprobe", "ocfs2_stackglue")],
    "the node manager shows cluster/ in a mounted configfs": loaded_stack,
    "configfs mounted after the node manager shows cluster/": lambda sim: [
        run("modprobe", "ocfs2_stack_o2cb"), mount(sim, "configfs", CONFIGFS)],
    "the user plugin": lambda sim: [run("modprobe", "ocfs2_stack_user"),
                                    run("modprobe", "ocfs2")],
    "modprobe -r takes the unused dependencies along": lambda sim: [
        run("modprobe", "ocfs2_stack_o2cb"), run("modprobe", "-r", "ocfs2_stack_o2cb")],
    "unmounting gives back the mount's reference": lambda sim: [
        *loaded_stack(sim), run("umount", str(sim.path("/dlm"))),
        run("modprobe", "-r", "ocfs2_dlmfs")],
    "a cluster made and removed": lambda sim: [
        *loaded_stack(sim), Change(MKDIR, CLUSTER), Change(MKDIR, f"{CLUSTER}/node/node1"),
        Change(RMDIR, f"{CLUSTER}/node/node1"), Change(RMDIR, CLUSTER)],
    "cluster_stack written": lambda sim: [run("modprobe", "ocfs2_stackglue"),
                                          Change(WRITE, CLUSTER_STACK_FILE, "pcmk")],
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_model_predicts_what_the_simulated_kernel_does(sim: SimKernel, case: str) -> None:
    sim.path("/dlm").mkdir()
    predicted, real = planned_then_real(sim, CASES[case](sim))
    assert predicted == real


@pytest.mark.parametrize("profile", ["builtin", "legacy12", "hbmode2007"])
def test_the_model_follows_each_kernel_family(make_sim: Callable[..., SimKernel],
                                              profile: str) -> None:
    sim = make_sim(profile=profile)
    sim.path("/dlm").mkdir()
    changes = [run("modprobe", "configfs"), run("modprobe", "ocfs2_nodemanager")]
    mountpoint = Kernel(System(root=str(sim.root))).configfs_mountpoint()
    if not sim.path(mountpoint).is_dir():
        sim.path(mountpoint).mkdir()  # older kernels: the init script's /config
    changes.append(mount(sim, "configfs", mountpoint))
    predicted, real = planned_then_real(sim, changes)
    assert predicted == real


def test_one_query_answers_every_module(sim: SimKernel,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []
    original = System.run

    def counting(self: System, argv: list[str], changes: bool = True) -> Any:
        asked.append(argv)
        return original(self, argv, changes)

    monkeypatch.setattr(System, "run", counting)
    index = ModuleIndex(System(root=str(sim.root)))
    assert index.modules("ocfs2_stack_o2cb") == [
        "configfs", "ocfs2_nodemanager", "ocfs2_dlm", "ocfs2_stackglue", "ocfs2_stack_o2cb"]
    assert index.modules("configfs") == ["configfs"]
    assert index.modules("ocfs2_disk_heartbeat") is None
    assert "not found" in index.reason("ocfs2_disk_heartbeat")
    assert len(asked) == 1 and asked[0][:3] == ["modprobe", "--show-depends", "-a"]


def test_a_planned_load_of_a_missing_module_fails_as_modprobe_does(
        make_sim: Callable[..., SimKernel]) -> None:
    sim = make_sim(profile="legacy12")
    planning = System(root=str(sim.root))
    planning.state = PlannedState()
    predicted = KernelModel(planning, planning.state).apply(run("modprobe", "ocfs2_stackglue"))
    real = System(root=str(sim.root)).run(["modprobe", "ocfs2_stackglue"])
    assert not predicted.ok and not real.ok
    assert "not found" in predicted.reason and "not found" in real.reason


def test_a_planned_reference_change_rewrites_only_its_module_line(sim: SimKernel) -> None:
    """Once the plan holds /proc/modules, a node made or removed changes one line,
    and the text is the one the full rewrite (from the file) gives."""
    text = ("configfs 57344 2 ocfs2_nodemanager, Live 0x0\n"
            "ocfs2_nodemanager 266240 3 ocfs2_stackglue,ocfs2_dlm, Live 0x0\n"
            "ocfs2_stackglue 24576 0 - Live 0x0\nocfs2_nodemanager_x 1 9 - Live 0x0")
    system = System(root=str(sim.root))
    for name, references in (("ocfs2_nodemanager", -1), ("ocfs2_nodemanager", 5),
                             ("configfs", 1), ("absent", 1), ("", 1)):
        planned = PlannedState()
        planned.write("/proc/modules", text)
        KernelModel(system, planned)._rewrite_modules(release=name, references=references)
        (sim.root / "proc" / "modules").write_text(text + "\n")
        full = PlannedState()
        KernelModel(system, full)._rewrite_modules(release=name, references=references)
        assert planned.values["/proc/modules"] == full.values["/proc/modules"], name
        text = planned.values["/proc/modules"]
    lines = text.splitlines()
    assert [line.split()[2] for line in lines] == ["1", "0", "0", "9"]
