"""pcmk as distributions run it: corosync and dlm_controld, no ocfs2_controld.

On the simulated kernel (whose stack glue has dlm_recover_callback_support),
with corosync's tools faked from the simulated machine's state
(simkernel/corosync.py) and a dlm_controld double (doubles/dlm_controld)
that builds the DLM's cluster in configfs.  Every refusal is checked to
leave the machine exactly as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import schemacheck
from runs import CLUSTER
from simkernel import SimKernel
from test_userspace_stacks import Bed, make_bed  # noqa: F401 (a fixture)

from o2cb_init.errors import ExitCode

RECORD = "/run/o2cb/dlm_controld"
DOC = Path(__file__).resolve().parent.parent / "doc"
STATUS_SCHEMA = json.loads((DOC / "status.schema.json").read_text())
CHECK_SCHEMA = json.loads((DOC / "check.schema.json").read_text())
PCMK_MODULES = {"ocfs2_stack_user", "ocfs2", "ocfs2_dlmfs", "dlm", "ocfs2_stackglue"}


def pcmk_bed(make_bed: Callable[..., Bed], quorum_timeout: int = 1,  # noqa: F811
             **options: object) -> Bed:
    bed = make_bed("pcmk", **options)
    text = bed.sim.path("/etc/default/o2cb").read_text()
    bed.sim.write_config(text + f"O2CB_QUORUM_TIMEOUT={quorum_timeout}\n")
    return bed


def make_pcmk_volume(sim: SimKernel, tmp_path: Path, device: str = "/dev/sdb") -> str:
    """A real pcmk OCFS2 image (mkfs.ocfs2) as ``device``; its UUID."""
    from o2cb_init import ocfs2disk

    image = tmp_path / "pcmk.img"
    with open(image, "wb") as handle:
        handle.truncate(64 << 20)
    subprocess.run(["mkfs.ocfs2", "-q", "-F", "-N", "2", "--cluster-stack=pcmk",
                    f"--cluster-name={CLUSTER}", str(image)], check=True, capture_output=True)
    uuid = ocfs2disk.read_superblock(str(image)).uuid
    sim.add_volume(device, uuid, global_heartbeat=False, image=image)
    return uuid


def start_dlm_controld_by_hand(bed: Bed) -> subprocess.Popen[bytes]:
    """dlm_controld as dlm.service or an administrator starts it, before o2cb."""
    bed.sim.load("dlm")
    if bed.sim.configfs() is None:
        bed.sim.mount("configfs", bed.sim.config_mount)
    process = subprocess.Popen([str(bed.installed["dlm_controld"])],
                               env=bed.sim.environment(), start_new_session=True)
    deadline = time.monotonic() + 10
    while not bed.pids("dlm_controld") or not bed.sim.snapshot()["dlm_cluster"]:
        assert time.monotonic() < deadline, "the dlm_controld double did not start"
        time.sleep(0.05)
    bed.wait_ready()
    return process


# -- start, status, stop ------------------------------------------------------------


def test_start_status_stop(make_bed: Callable[..., Bed]) -> None:  # noqa: F811
    bed = pcmk_bed(make_bed)
    start = bed.o2cb("start")
    assert start.exit_code == 0, start.text
    assert 'Setting cluster stack "pcmk": OK' in start.stdout
    assert "Starting dlm_controld: OK" in start.stdout
    assert "ocfs2_controld" not in start.text
    assert set(bed.sim.modules()) >= PCMK_MODULES
    assert "ocfs2_stack_o2cb" not in bed.sim.modules()
    assert bed.sim.is_mounted("/dlm")
    assert bed.sim.sysfs()["cluster_stack"] == "pcmk"
    assert set(bed.running()) == {"dlm_controld"}
    assert bed.sim.snapshot()["dlm_cluster"], "dlm_controld built its cluster"
    assert bed.sim.path(RECORD).read_text() == "program\n"
    assert bed.sim.tree() == {}, "pcmk builds no o2nm cluster"

    status = bed.o2cb("status")
    assert status.exit_code == 0, status.text
    assert "Checking corosync: quorate, cluster \"ocfs2\"" in status.stdout
    assert "corosync members: 1 node1 (local)" in status.stdout
    assert f"Checking for dlm_controld: running (pid {bed.pids('dlm_controld')[0]})" \
        in status.stdout
    assert 'Checking cluster "ocfs2" (pcmk): Online' in status.stdout
    assert bed.o2cb("online-status").exit_code == 0

    stop = bed.o2cb("stop")
    assert stop.exit_code == 0, stop.text
    assert "Stopping dlm_controld: OK" in stop.stdout
    assert bed.running() == {}
    assert bed.sim.modules() == {}
    assert not bed.sim.path(RECORD).exists()
    assert bed.sim.corosync() is not None, "corosync is never stopped"
    assert bed.o2cb("status").exit_code == ExitCode.NOT_RUNNING


def test_dlm_controld_runs_in_the_foreground_with_the_package_options(
    make_bed: Callable[..., Bed],  # noqa: F811
) -> None:
    bed = pcmk_bed(make_bed)
    bed.sim.write_config('DLM_CONTROLD_OPTS="--log_debug 1"\n', "/etc/default/dlm")
    assert bed.o2cb("start").exit_code == 0
    (pid,) = bed.pids("dlm_controld")
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert arguments[-4:] == [b"--foreground", b"--log_debug", b"1", b""]
    assert bed.o2cb("stop").exit_code == 0


def test_status_json_has_real_types(make_bed: Callable[..., Bed],  # noqa: F811
                                    tmp_path: Path) -> None:
    bed = pcmk_bed(make_bed)
    bed.sim.run_corosync(CLUSTER, members=((1, "node1"), (2, "node2")))
    uuid = make_pcmk_volume(bed.sim, tmp_path)
    assert bed.o2cb("start").exit_code == 0
    bed.sim.mount_pcmk_volume("/mnt/vol", device="/dev/sdb")
    bed.sim.add_lockspace("lvm_global")
    status = bed.o2cb("status", "--json")
    assert status.exit_code == 0, status.text
    facts = json.loads(status.stdout)
    assert schemacheck.errors(facts, STATUS_SCHEMA) == []
    mountpoint = str(bed.sim.path("/mnt/vol"))  # the simulated root's /proc/mounts
    assert facts["online"] is True
    assert facts["corosync"]["quorate"] is True
    assert facts["corosync"]["cluster_name"] == CLUSTER
    assert facts["corosync"]["members"] == [
        {"nodeid": 1, "name": "node1", "local": True},
        {"nodeid": 2, "name": "node2", "local": False},
    ]
    assert facts["dlm_controld"]["pids"] == bed.pids("dlm_controld")
    assert facts["dlm_controld"]["started_by_o2cb"] is True
    assert facts["lockspaces"] == [
        {"name": uuid, "device": "/dev/sdb", "mountpoint": mountpoint, "ocfs2": True,
         "members": [1]},
        {"name": "lvm_global", "device": None, "mountpoint": None, "ocfs2": False,
         "members": []},
    ]
    text = bed.o2cb("status").stdout
    assert f"Lockspace {uuid}: /dev/sdb on {mountpoint}, members 1" in text
    assert "Lockspace lvm_global: not OCFS2" in text
    bed.sim.remove_lockspace("lvm_global")
    bed.sim.umount("/mnt/vol")


def test_status_tells_the_lockspace_members_from_corosyncs(
    make_bed: Callable[..., Bed],  # noqa: F811
    tmp_path: Path,
) -> None:
    """A node that unmounted leaves the volume's lockspace and stays in corosync's membership."""
    bed = pcmk_bed(make_bed)
    bed.sim.run_corosync(CLUSTER, members=((1, "node1"), (2, "node2")))
    uuid = make_pcmk_volume(bed.sim, tmp_path)
    assert bed.o2cb("start").exit_code == 0
    bed.sim.mount_pcmk_volume("/mnt/vol", device="/dev/sdb")
    bed.sim.add_lockspace_member(uuid, 2)

    def shown() -> tuple[list[int], list[int], str]:
        status = bed.o2cb("status", "--json")
        assert status.exit_code == 0, status.text
        facts = json.loads(status.stdout)
        assert schemacheck.errors(facts, STATUS_SCHEMA) == []
        (lockspace,) = facts["lockspaces"]
        assert lockspace["name"] == uuid
        corosync_ids = [member["nodeid"] for member in facts["corosync"]["members"]]
        return corosync_ids, lockspace["members"], bed.o2cb("status").stdout

    assert shown()[:2] == ([1, 2], [1, 2])
    assert f"Lockspace {uuid}: /dev/sdb on " in shown()[2]
    assert ", members 1, 2" in shown()[2]
    bed.sim.remove_lockspace_member(uuid, 2)
    assert shown()[:2] == ([1, 2], [1])
    bed.sim.umount("/mnt/vol")
    assert bed.sim.lockspaces() == []
    assert bed.sim.snapshot()["dlm_cluster"], "dlm_controld's cluster stays"
    assert bed.o2cb("stop").exit_code == 0


def test_status_is_1_when_corosync_went_from_under_a_started_stack(
    make_bed: Callable[..., Bed],  # noqa: F811
) -> None:
    bed = pcmk_bed(make_bed)
    assert bed.o2cb("start").exit_code == 0
    bed.sim.stop_corosync()  # dlm_controld goes with it ("cluster is down, exiting")
    assert wait(lambda: not bed.pids("dlm_controld"))
    status = bed.o2cb("status")
    assert status.exit_code == ExitCode.FAILURE, status.text
    assert "Not online: quorate, dlm_controld missing" in status.stdout
    assert bed.o2cb("online-status").exit_code == 1


def test_status_is_3_when_stopped_while_corosync_runs(
    make_bed: Callable[..., Bed],  # noqa: F811
) -> None:
    bed = pcmk_bed(make_bed)
    status = bed.o2cb("status", "--json")
    assert status.exit_code == ExitCode.NOT_RUNNING, status.text
    facts = json.loads(status.stdout)
    assert facts["conditions"] == {"quorate": True, "dlm_controld": False,
                                   "plugin": False, "cluster_stack": False}


# -- what Pacemaker's lsb: and systemd: classes expect ---------------------------------


def test_start_when_started_and_stop_when_stopped_exit_0(
    make_bed: Callable[..., Bed],  # noqa: F811
) -> None:
    bed = pcmk_bed(make_bed)
    assert bed.o2cb("stop").exit_code == 0, "stop when stopped"
    assert bed.o2cb("start").exit_code == 0
    pids = bed.pids("dlm_controld")
    again = bed.o2cb("start")
    assert again.exit_code == 0, again.text
    assert "Cluster ocfs2 already online" in again.stdout
    assert bed.pids("dlm_controld") == pids
    assert bed.o2cb("stop").exit_code == 0
    stopped = bed.o2cb("stop")
    assert stopped.exit_code == 0, stopped.text
    assert bed.sim.modules() == {}


# -- refusals: before anything is loaded ----------------------------------------------


def without_corosync_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH without any corosync-quorumtool (the host may have the real one)."""
    kept = [entry for entry in os.environ["PATH"].split(os.pathsep)
            if not (Path(entry) / "corosync-quorumtool").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(kept))


@pytest.mark.parametrize(
    ("case", "code", "reason"),
    [
        ("not-installed", ExitCode.NOT_INSTALLED, "cluster stack pcmk needs corosync:"
         " corosync-quorumtool and corosync-cmapctl are not installed"),
        ("down", ExitCode.FAILURE,
         "cluster stack pcmk needs corosync, which is not running (cluster ocfs2)"),
        ("other-cluster", ExitCode.NOT_CONFIGURED,
         'corosync runs cluster "prod", not "ocfs2"'),
        ("not-quorate", ExitCode.FAILURE,
         "corosync's cluster ocfs2 is not quorate after 1 s (O2CB_QUORUM_TIMEOUT)"),
        ("no-dlm_controld", ExitCode.NOT_INSTALLED, "cluster stack pcmk needs dlm_controld"),
    ],
)
@pytest.mark.parametrize("verb", ["start", "online", "restart"])
def test_refusals_load_nothing(make_bed: Callable[..., Bed],  # noqa: F811
                               monkeypatch: pytest.MonkeyPatch,
                               case: str, code: int, reason: str, verb: str) -> None:
    bed = pcmk_bed(make_bed, daemons=() if case == "no-dlm_controld" else None)
    if case == "not-installed":
        without_corosync_tools(monkeypatch)
    elif case == "down":
        bed.sim.stop_corosync()
    elif case == "other-cluster":
        bed.sim.run_corosync("prod")
    elif case == "not-quorate":
        bed.sim.run_corosync(CLUSTER, quorate_in=None)
    before = bed.sim.snapshot()
    result = bed.o2cb(verb)
    assert result.exit_code == code, result.text
    assert len(result.errors) == 1, result.errors
    assert result.errors[0].startswith(f"o2cb: {reason}"), result.errors
    assert bed.sim.snapshot() == before
    assert bed.sim.modules() == {}
    assert bed.running() == {}
    assert not bed.sim.path(RECORD).exists()


@pytest.mark.parametrize(
    ("case", "problems"),
    [
        ("ready", []),
        ("down", ["corosync: corosync is not running"]),
        ("other-cluster", ["corosync: corosync's cluster is 'prod', not ocfs2",
                           "quorum: corosync is not quorate"]),
        ("not-quorate", ["quorum: corosync is not quorate"]),
        ("no-dlm_controld", ["daemon: dlm_controld is not installed"]),
    ],
)
def test_check_reports_corosync_and_dlm_controld(make_bed: Callable[..., Bed],  # noqa: F811
                                                 case: str, problems: list[str]) -> None:
    bed = pcmk_bed(make_bed, daemons=() if case == "no-dlm_controld" else None)
    if case == "down":
        bed.sim.stop_corosync()
    elif case == "other-cluster":
        bed.sim.run_corosync("prod", quorate_in=None)
    elif case == "not-quorate":
        bed.sim.run_corosync(CLUSTER, quorate_in=None)
    before = bed.sim.snapshot()
    result = bed.o2cb("check")
    assert result.exit_code == (1 if problems else 0), result.text
    assert [line.split(";")[0] for line in result.stdout.splitlines()] == (
        problems or ["No problems found"])
    findings = json.loads(bed.o2cb("check", "--json").stdout)
    assert schemacheck.errors(findings, CHECK_SCHEMA) == []
    assert bed.sim.snapshot() == before


def test_quorum_is_waited_for_within_the_bound(make_bed: Callable[..., Bed]) -> None:  # noqa: F811
    bed = pcmk_bed(make_bed, quorum_timeout=20)
    bed.sim.run_corosync(CLUSTER, quorate_in=1.5)
    began = time.monotonic()
    start = bed.o2cb("start")
    assert start.exit_code == 0, start.text
    assert 1.5 <= time.monotonic() - began < 20
    assert set(bed.running()) == {"dlm_controld"}


def test_the_quorum_wait_ends_at_its_bound(make_bed: Callable[..., Bed]) -> None:  # noqa: F811
    bed = pcmk_bed(make_bed, quorum_timeout=2)
    bed.sim.run_corosync(CLUSTER, quorate_in=None)
    began = time.monotonic()
    start = bed.o2cb("start")
    took = time.monotonic() - began
    assert start.exit_code == 1
    assert "not quorate after 2 s" in start.stderr
    assert 2 <= took < 6, took
    assert bed.sim.modules() == {}


def test_pacemaker_owns_dlm_controld(make_bed: Callable[..., Bed]) -> None:  # noqa: F811
    """Where Pacemaker is enabled its controld resource starts dlm_controld, never o2cb."""
    bed = pcmk_bed(make_bed)
    wants = bed.sim.path("/etc/systemd/system/multi-user.target.wants/pacemaker.service")
    wants.parent.mkdir(parents=True)
    wants.touch()
    before = bed.sim.snapshot()
    result = bed.o2cb("start")
    assert result.exit_code == 1
    assert "Starting dlm_controld: Failed" in result.stdout
    assert "dlm_controld is not running, and Pacemaker is enabled" in result.stderr
    assert bed.running() == {}
    assert bed.sim.snapshot() == before


# -- dlm_controld: ours is stopped, another's is left alone -----------------------------


def test_dlm_controld_started_by_others_is_left_running(
    make_bed: Callable[..., Bed],  # noqa: F811
) -> None:
    bed = pcmk_bed(make_bed)
    process = start_dlm_controld_by_hand(bed)
    try:
        pids = bed.pids("dlm_controld")
        start = bed.o2cb("start")
        assert start.exit_code == 0, start.text
        assert "Starting dlm_controld" not in start.stdout
        assert not bed.sim.path(RECORD).exists()
        stop = bed.o2cb("stop")
        assert stop.exit_code == 0, stop.text
        assert "dlm_controld" not in stop.stdout
        assert bed.pids("dlm_controld") == pids
        assert bed.sim.snapshot()["dlm_cluster"]
        # What dlm_controld needs stays: dlm and configfs, mounted.
        assert set(bed.sim.modules()) == {"dlm", "configfs"}
        assert bed.sim.configfs() is not None
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_our_dlm_controld_stays_while_another_lockspace_needs_it(
    make_bed: Callable[..., Bed],  # noqa: F811
) -> None:
    bed = pcmk_bed(make_bed)
    assert bed.o2cb("start").exit_code == 0
    pids = bed.pids("dlm_controld")
    bed.sim.add_lockspace("lvm_global")
    stop = bed.o2cb("stop")
    assert stop.exit_code == 0, stop.text
    assert bed.pids("dlm_controld") == pids
    assert {"dlm", "configfs"} <= set(bed.sim.modules())
    assert "ocfs2" not in bed.sim.modules()
    assert bed.sim.path(RECORD).exists(), "still ours to stop later"
    bed.sim.remove_lockspace("lvm_global")
    again = bed.o2cb("stop")
    assert again.exit_code == 0, again.text
    assert "Stopping dlm_controld: OK" in again.stdout
    assert bed.running() == {}
    assert bed.sim.modules() == {}


@pytest.mark.parametrize("verb", ["stop", "offline", "unload", "force-offline"])
def test_a_mounted_volume_keeps_everything(make_bed: Callable[..., Bed],  # noqa: F811
                                           tmp_path: Path, verb: str) -> None:
    bed = pcmk_bed(make_bed)
    make_pcmk_volume(bed.sim, tmp_path)
    assert bed.o2cb("start").exit_code == 0
    bed.sim.mount_pcmk_volume("/mnt/vol", device="/dev/sdb")
    pids = bed.pids("dlm_controld")
    before = bed.sim.snapshot()
    refused = bed.o2cb(verb)
    assert refused.exit_code == 1
    assert refused.errors == ["Unable to stop cluster as OCFS2 volume /dev/sdb is"
                              f" still mounted on {bed.sim.path('/mnt/vol')}"]
    assert bed.sim.snapshot() == before
    assert bed.pids("dlm_controld") == pids
    bed.sim.umount("/mnt/vol")
    stop = bed.o2cb("stop")
    assert stop.exit_code == 0, stop.text
    assert bed.running() == {}
    assert bed.sim.modules() == {}


def test_a_dlm_controld_that_fails_is_undone(make_bed: Callable[..., Bed]) -> None:  # noqa: F811
    bed = pcmk_bed(make_bed)
    bed.mode("dlm_controld", "fail")
    before = bed.sim.snapshot()
    result = bed.o2cb("start")
    assert result.exit_code == 1
    assert "Starting dlm_controld: Failed" in result.stdout
    assert "Unable to start dlm_controld: dlm_controld exited with status 1" in result.stderr
    assert bed.sim.snapshot() == before
    assert not bed.sim.path(RECORD).exists()


def test_dry_run_would_start_dlm_controld(make_bed: Callable[..., Bed]) -> None:  # noqa: F811
    bed = pcmk_bed(make_bed)
    before = bed.sim.snapshot()
    dry = bed.o2cb("--dry-run", "start")
    assert dry.exit_code == 0, dry.text
    assert "Starting dlm_controld: dry run" in dry.stdout
    assert f"  would start {bed.installed['dlm_controld']}" in dry.stdout
    assert f"  would write {RECORD}" in dry.stdout
    assert bed.sim.snapshot() == before
    assert bed.running() == {}


def wait(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()



def test_under_systemd_dlm_service_is_started_and_stopped(
    make_bed: Callable[..., Bed], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    """systemd runs the machine and has dlm.service: systemctl, not the program."""
    from doubles import install_program

    bed = pcmk_bed(make_bed)
    install_program("systemctl", tmp_path / "bin" / "systemctl")
    bed.sim.path("/run/systemd/system").mkdir(parents=True)
    unit = bed.sim.path("/lib/systemd/system/dlm.service")
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/usr/sbin/dlm_controld --foreground\n")
    dry = bed.o2cb("--dry-run", "start")
    assert "  would run systemctl start dlm.service" in dry.stdout, dry.stdout
    start = bed.o2cb("start")
    assert start.exit_code == 0, start.text
    assert "Starting dlm_controld (dlm.service): OK" in start.stdout
    assert bed.sim.path(RECORD).read_text() == "systemd\n"
    assert set(bed.running()) == {"dlm_controld"}
    stop = bed.o2cb("stop")
    assert stop.exit_code == 0, stop.text
    assert "Stopping dlm_controld: OK" in stop.stdout
    assert bed.running() == {}
    assert bed.sim.modules() == {}
    calls = [event for name, _pid, event in bed.events() if name == "systemctl"]
    assert calls == ["start dlm.service", "stop dlm.service"]


# -- fault injection: each change of a pcmk start failed, or the tool killed ----------


def test_every_fault_point_of_a_pcmk_start(make_bed: Callable[..., Bed]) -> None:  # noqa: F811
    from faultbed import fault_points, state
    from runs import o2cb_process
    from simkernel import faults

    bed = pcmk_bed(make_bed)
    offline = state(bed.sim)
    points = fault_points(bed.sim, "start")
    online = state(bed.sim)
    assert bed.o2cb("stop").exit_code == 0
    assert state(bed.sim) == offline
    assert points.get("modprobe", 0) >= 3 and points.get("mount", 0) >= 2, points
    for kind in faults.KINDS:
        for number in range(1, points.get(kind, 0) + 1):
            # Each call failed; the tool killed at the first call of each kind
            # (test_faults.py kills at every one for the o2cb stack).
            for action in ("fail", "kill") if number == 1 else ("fail",):
                what = f"start, {kind} call {number}: {action}"
                faults.reset(bed.sim.root)
                run = o2cb_process(bed.sim, "start", fault=f"{kind}:{number}:{action}")
                assert "Traceback" not in run.stderr, what
                if action == "fail":
                    assert run.exit_code == 1, f"{what}: {run.stdout} {run.stderr}"
                    assert state(bed.sim) == offline, f"{what}: not undone"
                    assert bed.running() == {}, what
                    assert not bed.sim.path(RECORD).exists(), what
                else:
                    assert run.exit_code == -9, f"{what}: {run.exit_code} {run.stderr}"
                assert bed.o2cb("status").exit_code in (1, 3), what
                retry = bed.o2cb("start")
                assert retry.exit_code == 0, f"{what}: retry {retry.text}"
                assert state(bed.sim) == online, what
                stop = bed.o2cb("stop")
                assert stop.exit_code == 0, f"{what}: stop {stop.text}"
                assert state(bed.sim) == offline, what
                assert bed.running() == {}, what
