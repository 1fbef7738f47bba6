"""Never under a mounted volume, whatever the stack (issue 18, item 2).

On the simulated kernel, through the command line: a pcmk volume that
mount.ocfs2 mounted with dlm_controld's help and no start of ours, or only
its lockspace in the kernel's DLM, refuses stop, offline, unload and
force-offline for every configured stack, before anything changes.  Other
lockspaces and dlm_controld's cluster in configfs do not refuse a stop but
keep the dlm module and configfs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from runs import CLUSTER, CONFIG, o2cb
from simkernel import SimKernel

STACKS = ["o2cb", "heartbeat2", "cman", "pcmk"]
STOPPING_VERBS = ["stop", "offline", "unload", "force-offline"]
UUID = "F91B9566EC7648E386629E392ADD45FF"  # as `ls /sys/kernel/dlm` shows a volume's lockspace
TITLE = re.compile(r"^(?P<title>.*): (?:OK|dry run|Failed)$")


def configure(sim: SimKernel, stack: str, cluster_conf: Callable[..., str]) -> SimKernel:
    sim.write_config(CONFIG.replace("O2CB_STACK=o2cb", f"O2CB_STACK={stack}"))
    sim.write_cluster_conf(cluster_conf())
    return sim


def machine_state(sim: SimKernel) -> dict[str, Any]:
    """Modules, mounts, sysfs, lockspaces and the whole configfs tree, dlm/ included."""
    snapshot = sim.snapshot()
    configfs = sim.configfs() or sim.hidden_configfs()
    snapshot["configfs"] = sorted(str(path.relative_to(configfs)) for path in configfs.rglob("*"))
    return snapshot


def titles(stdout: str) -> list[str]:
    return [m.group("title") for line in stdout.splitlines() if (m := TITLE.match(line))]


@pytest.fixture
def pcmk_volume(sim: SimKernel) -> SimKernel:
    """dlm_controld running and a pcmk volume mounted, with nothing of o2cb's."""
    sim.run_dlm_controld(CLUSTER)
    sim.mount_pcmk_volume("/mnt/vol", device="/dev/sdb")
    assert len(sim.lockspaces()) == 1
    return sim


def test_the_simulated_pcmk_mount_needs_dlm_controld_and_leaves_its_lockspace(
    sim: SimKernel,
) -> None:
    """As on 6.1: no mount without dlm_controld's cluster; umount ends the lockspace."""
    with pytest.raises(RuntimeError, match="Unable to access cluster service"):
        sim.mount_pcmk_volume("/mnt/vol")
    sim.run_dlm_controld(CLUSTER)
    sim.mount_pcmk_volume("/mnt/vol", device="/dev/sdb")
    (uuid,) = sim.lockspaces()
    assert re.fullmatch(r"[0-9A-F]{32}", uuid)
    assert sim.tree() == {} and not sim.held_regions(), "no o2nm cluster, no heartbeat"
    assert sim.modules()["dlm"] > 0
    sim.umount("/mnt/vol")
    assert sim.lockspaces() == []


@pytest.mark.parametrize("verb", STOPPING_VERBS)
@pytest.mark.parametrize("stack", STACKS)
def test_a_pcmk_volume_mounted_without_our_start_refuses(
    pcmk_volume: SimKernel, two_node_cluster_conf: Callable[..., str], stack: str, verb: str
) -> None:
    sim = configure(pcmk_volume, stack, two_node_cluster_conf)
    before = machine_state(sim)
    run = o2cb(sim, verb)
    assert run.exit_code == 1, run.stdout + run.stderr
    assert run.stderr.splitlines() == [
        f"Unable to stop cluster as OCFS2 volume /dev/sdb is still mounted on"
        f" {sim.path('/mnt/vol')}"
    ]
    assert machine_state(sim) == before
    assert sim.is_mounted("/mnt/vol")


@pytest.mark.parametrize("verb", STOPPING_VERBS)
@pytest.mark.parametrize("stack", STACKS)
def test_an_ocfs2_lockspace_without_a_mount_refuses(
    sim: SimKernel, two_node_cluster_conf: Callable[..., str], stack: str, verb: str
) -> None:
    """The mount may be in another mount namespace: the kernel's DLM still shows its lockspace."""
    configure(sim, stack, two_node_cluster_conf)
    sim.run_dlm_controld(CLUSTER)
    sim.add_lockspace(UUID)
    before = machine_state(sim)
    run = o2cb(sim, verb)
    assert run.exit_code == 1, run.stdout + run.stderr
    assert run.stderr.splitlines() == [
        f"Unable to stop cluster as the lockspace {UUID} of an OCFS2 volume is still active"
    ]
    assert machine_state(sim) == before


def test_the_refusal_comes_before_our_own_cluster_goes(
    sim: SimKernel, two_node_cluster_conf: Callable[..., str]
) -> None:
    """o2cb online and an OCFS2 lockspace: the o2nm cluster and the drivers stay."""
    configure(sim, "o2cb", two_node_cluster_conf)
    assert o2cb(sim, "start").exit_code == 0
    sim.load("dlm")
    sim.add_lockspace(UUID)
    before = machine_state(sim)
    for verb in STOPPING_VERBS:
        run = o2cb(sim, verb)
        assert run.exit_code == 1, (verb, run.stdout, run.stderr)
        assert f"Stopping O2CB cluster {CLUSTER}: Failed" in run.stdout.splitlines()
        assert machine_state(sim) == before, verb
    assert sim.tree()[f"{CLUSTER}/node/node1/local"] == "1"


def test_a_pcmk_volume_refuses_a_dry_run_the_same_way(
    pcmk_volume: SimKernel, two_node_cluster_conf: Callable[..., str]
) -> None:
    sim = configure(pcmk_volume, "pcmk", two_node_cluster_conf)
    before = machine_state(sim)
    dry = o2cb(sim, "--dry-run", "stop")
    real = o2cb(sim, "stop")
    assert dry.exit_code == real.exit_code == 1
    assert titles(dry.stdout) == titles(real.stdout) == [f"Stopping O2CB cluster {CLUSTER}"]
    assert machine_state(sim) == before


# -- what dlm_controld and other lockspaces keep -------------------------------------

# What each stack's load brings in; cman and pcmk load dlm with the user plugin.
LOADED = {"o2cb": "ocfs2_stack_o2cb", "cman": "ocfs2_stack_user", "pcmk": "ocfs2_stack_user"}


@pytest.mark.parametrize("keeper", ["lockspace", "dlm_controld"])
@pytest.mark.parametrize("stack", sorted(LOADED))
def test_dlm_users_do_not_refuse_a_stop_but_keep_dlm_and_configfs(
    sim: SimKernel, two_node_cluster_conf: Callable[..., str], stack: str, keeper: str
) -> None:
    """After our load, dlm_controld comes (or lvmlockd's lockspace): stop keeps what they use."""
    configure(sim, stack, two_node_cluster_conf)
    assert o2cb(sim, "load").exit_code == 0
    assert "configfs" in sim.modules() and sim.configfs() is not None
    if keeper == "lockspace":
        sim.load("dlm")
        sim.add_lockspace("lvm_global")
    else:
        sim.run_dlm_controld(CLUSTER)
    dry = o2cb(sim, "--dry-run", "stop")
    run = o2cb(sim, "stop")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert (dry.exit_code, titles(dry.stdout)) == (0, titles(run.stdout))
    assert "Unmounting configfs filesystem: OK" not in run.stdout.splitlines()
    modules = sim.modules()
    assert LOADED[stack] not in modules and "ocfs2_dlmfs" not in modules
    assert "dlm" in modules and "configfs" in modules
    assert sim.configfs() is not None, "configfs unmounted under the DLM"
    if keeper == "lockspace":
        assert sim.lockspaces() == ["lvm_global"]
    else:
        assert (sim.configfs() / "dlm" / "cluster" / "cluster_name").read_text() == "ocfs2\n"

    # Once the DLM's users are gone, a stop takes away what came after our load
    # (dlm among it, for o2cb too: the record cannot tell who loaded it).
    if keeper == "lockspace":
        sim.remove_lockspace("lvm_global")
    else:
        sim.stop_dlm_controld()
    assert o2cb(sim, "stop").exit_code == 0
    assert sim.configfs() is None
    assert sim.modules() == {}


def test_dlm_controld_keeps_configfs_that_was_ours(
    sim: SimKernel, two_node_cluster_conf: Callable[..., str]
) -> None:
    """o2cb start mounted configfs; dlm_controld built its cluster there since: it stays."""
    configure(sim, "o2cb", two_node_cluster_conf)
    assert o2cb(sim, "start").exit_code == 0
    sim.run_dlm_controld(CLUSTER)
    run = o2cb(sim, "stop")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert sim.tree() == {}, "our cluster went"
    assert "ocfs2_stack_o2cb" not in sim.modules()
    assert sim.configfs() is not None and "configfs" in sim.modules()
    assert (sim.configfs() / "dlm" / "cluster").is_dir()
