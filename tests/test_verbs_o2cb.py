"""The init verbs on the classic o2cb stack, on the simulated kernel.

Every verb from every starting state that matters: nothing loaded, drivers
built in, loaded but offline, online, online with a mounted volume, the
ocfs2 1.2 drivers, configfs at /config, configfs mounted or used by someone
else before the tool ran, missing or broken configuration.  The commands
run in-process through click's CliRunner against ``--root <sim root>``;
the assertions are on the simulated kernel's state (modules, mounts, the
configfs tree, sysfs) and on exit codes, and on the output where the
reference script's lines are part of the contract.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runs import CLUSTER, CONFIG, Run, o2cb, prepare
from simkernel import SimKernel

from o2cb_init.baseline import BASELINE_FILE
from o2cb_init.system import CommandResult, System

HEARTBEAT_STILL_ACTIVE = "Unable to stop cluster as heartbeat region still active"

# Shown on every online, as the reference and o2cb(7) show it.
SETTING_STACK = 'Setting cluster stack "o2cb": OK'
STOP_CLUSTER_LINES = [
    f"Stopping O2CB cluster {CLUSTER}: OK",
    f'Unregistering O2CB cluster "{CLUSTER}": OK',
]

START_LINES = [
    'Loading filesystem "configfs": OK',
    "Mounting configfs filesystem at /sys/kernel/config: OK",
    'Loading stack plugin "o2cb": OK',
    'Loading filesystem "ocfs2_dlmfs": OK',
    "Mounting ocfs2_dlmfs filesystem at /dlm: OK",
    SETTING_STACK,
    f'Registering O2CB cluster "{CLUSTER}": OK',
    "Setting O2CB cluster timeouts : OK",
]

# The modules a start on the modern profile loads (nothing was there before).
STACK_MODULES = {
    "configfs",
    "ocfs2_stackglue",
    "ocfs2_nodemanager",
    "ocfs2_dlm",
    "ocfs2_stack_o2cb",
    "ocfs2_dlmfs",
}

# The simulated kernel has no /sys/kernel/debug.
DEBUGFS_NOT_MOUNTED = "Debug file system at /sys/kernel/debug: not mounted"


@pytest.fixture
def loaded(machine: SimKernel) -> SimKernel:
    """Drivers loaded and mounted, cluster offline."""
    assert o2cb(machine, "load").exit_code == 0
    return machine


@pytest.fixture
def mounted(online: SimKernel) -> SimKernel:
    """Online with an OCFS2 volume mounted: a heartbeat region is active."""
    online.mount_ocfs2_volume(CLUSTER)
    assert online.held_regions()
    return online


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every command the tool runs in this process, recorded."""
    ran: list[list[str]] = []
    original = System.run

    def run(self: System, argv: list[str], *args: Any, **kwargs: Any) -> CommandResult:
        ran.append(list(argv))
        return original(self, argv, *args, **kwargs)

    monkeypatch.setattr(System, "run", run)
    return ran


def config_mounted_at(sim: SimKernel) -> list[str]:
    """Root-relative mount points of configfs."""
    return [
        "/" + str(Path(point).relative_to(sim.root)) for point, fstype in sim.mounts()
        if fstype == "configfs"
    ]


def assert_online(sim: SimKernel, mountpoint: str = "/sys/kernel/config") -> None:
    tree = sim.tree()
    assert config_mounted_at(sim) == [mountpoint]
    assert sim.is_mounted("/dlm")
    assert ((str(sim.path("/dlm")), "ocfs2_dlmfs")) in sim.mounts()
    assert tree[CLUSTER] == "<dir>"
    assert tree[f"{CLUSTER}/node/node1/ipv4_address"] == "127.0.0.1"
    assert tree[f"{CLUSTER}/node/node1/ipv4_port"] == "7777"
    assert tree[f"{CLUSTER}/node/node1/num"] == "0"
    assert tree[f"{CLUSTER}/node/node2/ipv4_address"] == "10.0.0.2"
    assert tree[f"{CLUSTER}/node/node2/ipv4_port"] == "7777"
    assert tree[f"{CLUSTER}/node/node2/num"] == "1"
    assert tree[f"{CLUSTER}/node/node1/local"] == "1"
    assert tree[f"{CLUSTER}/node/node2/local"] == "0"


def assert_timeouts(sim: SimKernel) -> None:
    tree = sim.tree()
    assert tree[f"{CLUSTER}/heartbeat/dead_threshold"] == "21"
    assert tree[f"{CLUSTER}/idle_timeout_ms"] == "20000"
    assert tree[f"{CLUSTER}/keepalive_delay_ms"] == "3000"
    assert tree[f"{CLUSTER}/reconnect_delay_ms"] == "2500"


def assert_one_error_line(run: Run) -> None:
    assert len(run.errors) == 1, run.stderr
    assert "Traceback" not in run.stdout + run.stderr


# -- start -----------------------------------------------------------------------


def test_start_on_a_clean_kernel_brings_the_cluster_online(machine: SimKernel) -> None:
    machine.path("/dlm").mkdir()  # as the package ships it
    run = o2cb(machine, "start")
    assert run.exit_code == 0, run.stderr
    assert run.lines == START_LINES
    assert run.stderr == ""
    assert set(machine.modules()) == STACK_MODULES
    assert_online(machine)
    assert_timeouts(machine)
    assert machine.sysfs()["cluster_stack"] == "o2cb"
    assert machine.sysfs()["loaded_cluster_plugins"] == "o2cb"
    assert [name for name in machine.tree() if name.count("/") == 0] == [CLUSTER]


def test_start_creates_a_missing_dlm_mount_point(machine: SimKernel) -> None:
    assert not machine.path("/dlm").exists()
    run = o2cb(machine, "start")
    assert run.exit_code == 0, run.stderr
    assert "Creating directory '/dlm': OK" in run.lines
    assert [line for line in run.lines if not line.startswith("Creating")] == START_LINES
    assert machine.is_mounted("/dlm")


def test_start_when_disabled_loads_nothing(
    sim: SimKernel, two_node_cluster_conf: Callable[..., str]
) -> None:
    prepare(sim, two_node_cluster_conf, CONFIG.replace("ENABLED=true", "ENABLED=false"))
    before = sim.snapshot()
    run = o2cb(sim, "start")
    assert run.exit_code == 0
    assert run.stdout == ""
    assert sim.modules() == {}
    assert sim.snapshot() == before


def test_start_twice_changes_nothing_the_second_time(online: SimKernel) -> None:
    before = online.snapshot()
    run = o2cb(online, "start")
    assert run.exit_code == 0
    assert run.lines == [SETTING_STACK, f"Cluster {CLUSTER} already online"]
    assert run.stderr == ""
    assert online.snapshot() == before


def test_start_from_loaded_only_brings_the_cluster_online(loaded: SimKernel) -> None:
    modules = set(loaded.modules())
    run = o2cb(loaded, "start")
    assert run.exit_code == 0
    assert run.lines == START_LINES[-3:]
    assert set(loaded.modules()) == modules
    assert_online(loaded)
    assert_timeouts(loaded)


def test_start_with_a_cluster_argument(
    sim: SimKernel, two_node_cluster_conf: Callable[..., str]
) -> None:
    prepare(sim, lambda: two_node_cluster_conf(name="other"))
    run = o2cb(sim, "start", "other")
    assert run.exit_code == 0, run.stderr
    assert sim.tree()["other/node/node1/local"] == "1"
    assert CLUSTER not in sim.tree()


def test_start_on_a_kernel_without_sys_kernel_config_mounts_at_config(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str]
) -> None:
    sim = prepare(make_sim(config_mount="/config"), two_node_cluster_conf)
    assert not sim.path("/sys/kernel/config").exists()
    before = sim.snapshot()
    run = o2cb(sim, "start")
    assert run.exit_code == 0, run.stderr
    assert "Mounting configfs filesystem at /config: OK" in run.lines
    assert_online(sim, "/config")
    assert not sim.path("/sys/kernel/config").exists()
    assert o2cb(sim, "status").exit_code == 0
    assert o2cb(sim, "stop").exit_code == 0
    assert sim.snapshot() == before


# -- stop ------------------------------------------------------------------------


def test_start_then_stop_unloads_everything_it_loaded(machine: SimKernel) -> None:
    before = machine.snapshot()
    assert o2cb(machine, "start").exit_code == 0
    assert machine.path(BASELINE_FILE).exists()
    run = o2cb(machine, "stop")
    assert run.exit_code == 0, run.stderr
    assert run.lines[:2] == STOP_CLUSTER_LINES
    assert machine.snapshot() == before
    assert machine.modules() == {}
    assert machine.mounts() == []
    assert not machine.path(BASELINE_FILE).exists()


def test_stop_twice_changes_nothing_the_second_time(online: SimKernel) -> None:
    assert o2cb(online, "stop").exit_code == 0
    before = online.snapshot()
    run = o2cb(online, "stop")
    assert run.exit_code == 0
    assert run.stdout == ""
    assert run.stderr == ""
    assert online.snapshot() == before


def test_stop_on_a_clean_kernel_does_nothing(machine: SimKernel) -> None:
    before = machine.snapshot()
    run = o2cb(machine, "stop")
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")
    assert machine.snapshot() == before


def test_stop_leaves_configfs_that_was_mounted_before_start(machine: SimKernel) -> None:
    machine.load("configfs")  # as systemd does at boot
    machine.mount("configfs", "/sys/kernel/config")
    before = machine.snapshot()
    run = o2cb(machine, "start")
    assert run.exit_code == 0
    assert not any("configfs" in line for line in run.lines)
    baseline = json.loads(machine.path(BASELINE_FILE).read_text())
    assert "configfs" in baseline["modules"]
    assert "/sys/kernel/config" in baseline["mountpoints"]
    assert o2cb(machine, "stop").exit_code == 0
    assert machine.snapshot() == before
    assert config_mounted_at(machine) == ["/sys/kernel/config"]
    assert "configfs" in machine.modules()


def test_stop_keeps_configfs_that_someone_else_uses(machine: SimKernel) -> None:
    machine.load("configfs")
    machine.mount("configfs", "/sys/kernel/config")
    assert o2cb(machine, "start").exit_code == 0
    configfs = machine.configfs()
    assert configfs is not None
    (configfs / "nvmet").mkdir()
    # Without the baseline the tool would own configfs; only nvmet keeps it now.
    machine.path(BASELINE_FILE).unlink()
    run = o2cb(machine, "stop")
    assert run.exit_code == 0, run.stderr
    assert set(machine.modules()) == {"configfs"}
    assert config_mounted_at(machine) == ["/sys/kernel/config"]
    assert (configfs / "nvmet").is_dir()
    assert not machine.is_mounted("/dlm")
    assert machine.tree() == {}


def test_stop_with_built_in_drivers_unloads_nothing_built_in(
    make_sim: Callable[..., SimKernel],
    two_node_cluster_conf: Callable[..., str],
    commands: list[list[str]],
) -> None:
    sim = prepare(make_sim(profile="builtin"), two_node_cluster_conf)
    before = sim.snapshot()
    start = o2cb(sim, "start")
    assert start.exit_code == 0, start.stderr
    assert not any(line.startswith("Loading") for line in start.lines)
    assert sim.modules() == {}
    assert_online(sim)
    assert_timeouts(sim)
    stop = o2cb(sim, "stop")
    assert stop.exit_code == 0, stop.stderr
    assert not any(line.startswith("Unloading") for line in stop.lines)
    assert sim.snapshot() == before
    assert o2cb(sim, "unload").exit_code == 0
    # The plan asks modprobe what a module needs (--show-depends); nothing is loaded.
    assert not [argv for argv in commands if argv[0] == "modprobe" and "--show-depends" not in argv]


# -- heartbeat active: nothing may be stopped -------------------------------------


@pytest.mark.parametrize(
    "verb", ["stop", "offline", "force-offline", "unload", "restart"]
)
def test_a_mounted_volume_refuses_every_verb_that_stops(mounted: SimKernel, verb: str) -> None:
    before = mounted.snapshot()
    tree = mounted.tree()
    run = o2cb(mounted, verb)
    assert run.exit_code == 1
    assert run.errors == [HEARTBEAT_STILL_ACTIVE]
    assert f"Stopping O2CB cluster {CLUSTER}: Failed" in run.lines
    assert mounted.snapshot() == before
    assert mounted.tree() == tree
    assert mounted.is_mounted("/mnt/vol")
    assert mounted.held_regions()


def test_stop_after_the_volume_is_unmounted(mounted: SimKernel) -> None:
    mounted.umount("/mnt/vol")
    run = o2cb(mounted, "stop")
    assert run.exit_code == 0, run.stderr
    assert mounted.modules() == {}
    assert mounted.mounts() == []


def test_status_shows_the_active_heartbeat(mounted: SimKernel) -> None:
    run = o2cb(mounted, "status")
    assert run.exit_code == 0
    assert run.lines[-2:] == ["Checking O2CB heartbeat: Active", DEBUGFS_NOT_MOUNTED]
    facts = json.loads(o2cb(mounted, "status", "--json").stdout)
    assert facts["heartbeat_active"] is True
    assert len(facts["heartbeat_regions"]) == 1


# -- load, unload, online, offline, force-offline, restart ------------------------


def test_load_on_a_clean_kernel_loads_and_mounts_without_a_cluster(machine: SimKernel) -> None:
    run = o2cb(machine, "load")
    assert run.exit_code == 0, run.stderr
    assert [line for line in run.lines if not line.startswith("Creating")] == START_LINES[:5]
    assert set(machine.modules()) == STACK_MODULES
    assert machine.is_mounted("/dlm")
    assert machine.tree() == {}
    before = machine.snapshot()
    again = o2cb(machine, "load")
    assert (again.exit_code, again.stdout) == (0, "")
    assert machine.snapshot() == before


def test_online_on_a_clean_kernel_loads_then_brings_the_cluster_online(
    machine: SimKernel,
) -> None:
    run = o2cb(machine, "online")
    assert run.exit_code == 0, run.stderr
    assert_online(machine)
    assert_timeouts(machine)


def test_offline_keeps_the_drivers(online: SimKernel) -> None:
    modules = set(online.modules())
    run = o2cb(online, "offline")
    assert run.exit_code == 0, run.stderr
    assert run.lines == STOP_CLUSTER_LINES
    assert online.tree() == {}
    assert set(online.modules()) == modules
    assert online.is_mounted("/dlm")
    assert o2cb(online, "online-status").exit_code == 1


@pytest.mark.parametrize("verb", ["offline", "force-offline"])
def test_offline_when_already_offline_changes_nothing(loaded: SimKernel, verb: str) -> None:
    before = loaded.snapshot()
    run = o2cb(loaded, verb)
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")
    assert loaded.snapshot() == before


@pytest.mark.parametrize("verb", ["offline", "force-offline", "unload", "stop"])
def test_stopping_verbs_on_a_clean_kernel_change_nothing(machine: SimKernel, verb: str) -> None:
    before = machine.snapshot()
    run = o2cb(machine, verb)
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")
    assert machine.snapshot() == before


def test_force_offline_takes_the_cluster_down(online: SimKernel) -> None:
    run = o2cb(online, "force-offline")
    assert run.exit_code == 0, run.stderr
    assert online.tree() == {}
    assert "ocfs2_stack_o2cb" in online.modules()


def test_unload_from_online_goes_offline_then_unloads(machine: SimKernel) -> None:
    before = machine.snapshot()
    assert o2cb(machine, "start").exit_code == 0
    run = o2cb(machine, "unload")
    assert run.exit_code == 0, run.stderr
    assert run.lines[:2] == STOP_CLUSTER_LINES
    assert machine.snapshot() == before


def test_unload_from_loaded_unloads(machine: SimKernel) -> None:
    before = machine.snapshot()
    assert o2cb(machine, "load").exit_code == 0
    run = o2cb(machine, "unload")
    assert run.exit_code == 0, run.stderr
    assert machine.snapshot() == before


@pytest.mark.parametrize("verb", ["restart"])
def test_restart_takes_the_cluster_down_and_up(online: SimKernel, verb: str) -> None:
    # A changed timeout shows that the cluster was really rebuilt.
    online.write_config(CONFIG.replace("RECONNECT_DELAY_MS=2500", "RECONNECT_DELAY_MS=4000"))
    run = o2cb(online, verb)
    assert run.exit_code == 0, run.stderr
    assert run.lines[:2] == STOP_CLUSTER_LINES
    assert run.lines[-1] == "Setting O2CB cluster timeouts : OK"
    assert_online(online)
    assert online.tree()[f"{CLUSTER}/reconnect_delay_ms"] == "4000"


@pytest.mark.parametrize("verb", ["restart"])
def test_restart_on_a_clean_kernel_starts(machine: SimKernel, verb: str) -> None:
    run = o2cb(machine, verb)
    assert run.exit_code == 0, run.stderr
    assert_online(machine)


# -- status and online-status ----------------------------------------------------


def test_status_online(online: SimKernel) -> None:
    run = o2cb(online, "status")
    assert run.exit_code == 0
    assert run.lines == [
        'Driver for "configfs": Loaded',
        'Filesystem "configfs": Mounted',
        "Stack glue driver: Loaded",
        'Stack plugin "o2cb": Loaded',
        'Driver for "ocfs2_dlmfs": Loaded',
        'Filesystem "ocfs2_dlmfs": Mounted',
        f'Checking O2CB cluster "{CLUSTER}": Online',
        "  Heartbeat dead threshold: 21",
        "  Network idle timeout: 20000",
        "  Network keepalive delay: 3000",
        "  Network reconnect delay: 2500",
        "  Heartbeat mode: Local",
        "Checking O2CB heartbeat: Not active",
        DEBUGFS_NOT_MOUNTED,
    ]


def test_status_json_has_the_same_facts(online: SimKernel) -> None:
    run = o2cb(online, "status", "--json")
    assert run.exit_code == 0
    facts = json.loads(run.stdout)
    assert facts["online"] is True
    assert facts["running"] is True
    assert facts["cluster"] == CLUSTER
    assert facts["stack"] == "o2cb"
    assert facts["plugin"] == {"name": "o2cb", "loaded": True}
    assert facts["configfs_mounted"] is True
    assert facts["ocfs2_dlmfs_mounted"] is True
    assert facts["heartbeat_dead_threshold"] == 21
    assert facts["idle_timeout_ms"] == 20000
    assert facts["keepalive_delay_ms"] == 3000
    assert facts["reconnect_delay_ms"] == 2500
    assert facts["heartbeat_mode"] == "local"
    assert facts["heartbeat_active"] is False
    assert facts["heartbeat_regions"] == []
    assert facts["nodes"] == [
        {"name": "node1", "number": 0, "address": "127.0.0.1", "port": 7777, "local": True,
         "heartbeating": None, "connected": None},
        {"name": "node2", "number": 1, "address": "10.0.0.2", "port": 7777, "local": False,
         "heartbeating": None, "connected": None},
    ]


def test_status_offline_exits_3(loaded: SimKernel) -> None:
    run = o2cb(loaded, "status")
    assert run.exit_code == 3
    assert run.lines[-2:] == [f'Checking O2CB cluster "{CLUSTER}": Offline', DEBUGFS_NOT_MOUNTED]
    facts = json.loads(o2cb(loaded, "status", "--json").stdout)
    assert facts["online"] is False
    assert facts["plugin"]["loaded"] is True
    assert "heartbeat_active" not in facts


def test_status_on_a_clean_kernel(machine: SimKernel) -> None:
    before = machine.snapshot()
    run = o2cb(machine, "status")
    assert run.exit_code == 3
    assert run.lines[0] == 'Driver for "configfs": Not loaded'
    run = o2cb(machine, "status", "--json")
    assert run.exit_code == 3
    facts = json.loads(run.stdout)
    assert facts["online"] is False
    assert facts["configfs_loaded"] is False
    assert machine.snapshot() == before


def test_online_status(machine: SimKernel) -> None:
    offline = o2cb(machine, "online-status")
    assert (offline.exit_code, offline.stdout) == (1, "offline\n")
    assert o2cb(machine, "start").exit_code == 0
    online = o2cb(machine, "online-status")
    assert (online.exit_code, online.stdout) == (0, "online\n")
    assert o2cb(machine, "online-status", "other").exit_code == 1


def test_online_status_says_error_when_it_cannot_read_the_cluster(online: SimKernel) -> None:
    """The reference's contract: online 0, offline 1, error 2 (here: an attribute that
    cannot be read, as an I/O error on configfs gives)."""
    attribute = online.path("/sys/kernel/config/cluster/ocfs2/node/node1/num")
    attribute.unlink()
    attribute.mkdir()  # reading it now fails with EISDIR
    run = o2cb(online, "online-status")
    assert (run.exit_code, run.stdout) == (2, "error\n")
    assert_one_error_line(run)
    assert "node1/num" in run.stderr


# -- failing online: one line, nothing half-built --------------------------------


def test_online_fails_when_this_host_is_not_in_cluster_conf(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str]
) -> None:
    sim = prepare(make_sim(hostname="stranger"), two_node_cluster_conf)
    before = sim.snapshot()
    run = o2cb(sim, "start")
    assert run.exit_code == 6, "a layout without this host is a configuration problem"
    assert_one_error_line(run)
    assert "stranger" in run.stderr
    assert sim.tree() == {}
    assert sim.snapshot() == before, "found before any driver is loaded"
    assert o2cb(sim, "online-status").exit_code == 1


def test_online_fails_when_the_cluster_is_not_in_cluster_conf(machine: SimKernel) -> None:
    before = machine.snapshot()
    run = o2cb(machine, "online", "nosuch")
    assert run.exit_code == 6  # not configured for this host or cluster
    assert_one_error_line(run)
    assert "nosuch" in run.stderr
    assert machine.tree() == {}
    assert machine.snapshot() == before, "found before any driver is loaded"


def test_a_second_cluster_is_refused_by_the_kernel(
    online: SimKernel, two_node_cluster_conf: Callable[..., str]
) -> None:
    online.write_cluster_conf(
        two_node_cluster_conf() + "\n" + two_node_cluster_conf(name="other")
    )
    before = online.snapshot()
    run = o2cb(online, "online", "other")
    assert run.exit_code == 1
    assert_one_error_line(run)
    assert online.snapshot() == before


def test_keepalive_not_below_idle_is_refused_before_anything_loads(
    sim: SimKernel, two_node_cluster_conf: Callable[..., str]
) -> None:
    prepare(
        sim, two_node_cluster_conf, CONFIG.replace("KEEPALIVE_DELAY_MS=3000",
                                                   "KEEPALIVE_DELAY_MS=20000")
    )
    before = sim.snapshot()
    run = o2cb(sim, "start")
    assert run.exit_code == 6
    assert_one_error_line(run)
    assert sim.snapshot() == before


def test_a_duplicate_node_address_is_refused(
    sim: SimKernel, two_node_cluster_conf: Callable[..., str]
) -> None:
    prepare(sim, lambda: two_node_cluster_conf().replace("10.0.0.2", "127.0.0.1"))
    run = o2cb(sim, "start")
    assert run.exit_code == 6
    assert_one_error_line(run)
    assert "127.0.0.1" in run.stderr
    assert sim.tree() == {}


# -- missing or broken configuration: exit 6 -------------------------------------


@pytest.mark.parametrize("verb", ["start", "online", "load"])
def test_a_missing_config_exits_6(machine: SimKernel, verb: str) -> None:
    machine.path("/etc/default/o2cb").unlink()
    before = machine.snapshot()
    run = o2cb(machine, verb)
    assert run.exit_code == 6
    assert_one_error_line(run)
    assert machine.snapshot() == before


@pytest.mark.parametrize(
    "config",
    [
        "O2CB_ENABLED=maybe\n",
        "this is not a setting\n",
        CONFIG + "O2CB_STACK=nosuch\n",
        CONFIG.replace("THRESHOLD=21", "THRESHOLD=$(reboot)"),
    ],
)
def test_a_broken_config_exits_6(machine: SimKernel, config: str) -> None:
    machine.write_config(config)
    before = machine.snapshot()
    run = o2cb(machine, "start")
    assert run.exit_code == 6
    assert_one_error_line(run)
    assert "/etc/default/o2cb" in run.stderr
    assert machine.snapshot() == before


@pytest.mark.parametrize("config", [None, "O2CB_ENABLED=maybe\n"])
def test_status_without_a_valid_config_says_why_then_shows_the_kernel(
    online: SimKernel, config: str | None
) -> None:
    if config is None:
        online.path("/etc/default/o2cb").unlink()
    else:
        online.write_config(config)
    run = o2cb(online, "status")
    assert run.exit_code == 0  # the cluster the kernel runs is online
    assert len(run.errors) == 1 and run.errors[0].startswith("o2cb: /etc/default/o2cb")
    assert run.errors[0].endswith("; showing what the kernel runs")
    assert f'Checking O2CB cluster "{CLUSTER}": Online' in run.lines


def test_a_missing_cluster_conf_exits_6(machine: SimKernel) -> None:
    machine.path("/etc/ocfs2/cluster.conf").unlink()
    run = o2cb(machine, "start")
    assert run.exit_code == 6
    assert_one_error_line(run)
    assert machine.tree() == {}


# -- old drivers ----------------------------------------------------------------


def test_legacy12_start_and_stop(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str]
) -> None:
    sim = prepare(make_sim(profile="legacy12"), two_node_cluster_conf)
    before = sim.snapshot()
    run = o2cb(sim, "start")
    assert run.exit_code == 0, run.stderr
    assert not any("plugin" in line or "cluster stack" in line for line in run.lines)
    assert sim.sysfs() == {}
    assert_online(sim)
    threshold = sim.path("/proc/fs/ocfs2_nodemanager/hb_dead_threshold")
    assert threshold.read_text().strip() == "21"
    status = o2cb(sim, "status")
    assert status.exit_code == 0
    assert "  Heartbeat dead threshold: 21" in status.lines
    assert o2cb(sim, "stop").exit_code == 0
    assert sim.snapshot() == before


@pytest.mark.parametrize("stack", ["cman", "pcmk", "heartbeat2"])
def test_legacy12_refuses_the_userspace_stacks(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str], stack: str
) -> None:
    sim = prepare(
        make_sim(profile="legacy12"),
        two_node_cluster_conf,
        CONFIG.replace("O2CB_STACK=o2cb", f"O2CB_STACK={stack}"),
    )
    before = sim.snapshot()
    run = o2cb(sim, "start")
    assert run.exit_code == 6
    assert_one_error_line(run)
    assert stack in run.stderr
    assert sim.snapshot() == before


def test_hbmode2007_start_and_stop(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str]
) -> None:
    sim = prepare(make_sim(profile="hbmode2007"), two_node_cluster_conf)
    before = sim.snapshot()
    run = o2cb(sim, "start")
    assert run.exit_code == 0, run.stderr
    assert_online(sim)
    assert_timeouts(sim)
    assert sim.configfs() is not None
    assert (sim.configfs() / "cluster/heartbeat_mode").read_text().strip() == "disk"
    assert o2cb(sim, "stop").exit_code == 0
    assert sim.snapshot() == before


# -- dry run and verbose ---------------------------------------------------------


def test_dry_run_start_changes_nothing(machine: SimKernel) -> None:
    before = machine.snapshot()
    run = o2cb(machine, "--dry-run", "start")
    assert run.exit_code == 0, run.stderr
    assert "modprobe ocfs2_stack_o2cb" in run.stdout
    assert "modprobe configfs" in run.stdout
    assert machine.snapshot() == before
    assert not machine.path("/dlm").exists()
    assert not machine.path(BASELINE_FILE).exists()


def test_dry_run_stop_changes_nothing(online: SimKernel) -> None:
    before = online.snapshot()
    run = o2cb(online, "--dry-run", "stop")
    assert run.exit_code == 0, run.stderr
    assert "modprobe -r ocfs2_stack_o2cb" in run.stdout
    assert online.snapshot() == before
    assert online.path(BASELINE_FILE).exists()


def test_verbose_prints_probes_on_stderr(machine: SimKernel) -> None:
    machine.path("/dlm").mkdir()
    run = o2cb(machine, "-v", "start")
    assert run.exit_code == 0
    assert run.lines == START_LINES
    assert "o2cb: filesystem configfs in /proc/filesystems: no" in run.errors
    assert "o2cb: run modprobe ocfs2_stack_o2cb" in run.errors
    assert all(line.startswith("o2cb: ") for line in run.errors)


# -- enable and disable ----------------------------------------------------------


def test_enable_writes_the_setting_then_starts(
    sim: SimKernel, two_node_cluster_conf: Callable[..., str]
) -> None:
    prepare(sim, two_node_cluster_conf, "# kept\n" + CONFIG.replace("=true", "=false"))
    run = o2cb(sim, "enable")
    assert run.exit_code == 0, run.stderr
    assert run.lines[0] == "Writing O2CB configuration: OK"
    text = sim.path("/etc/default/o2cb").read_text()
    assert "O2CB_ENABLED=true\n" in text
    assert text.startswith("# kept\n")
    assert_online(sim)
    assert_timeouts(sim)


def test_disable_writes_the_setting_then_stops(online: SimKernel) -> None:
    run = o2cb(online, "disable")
    assert run.exit_code == 0, run.stderr
    assert run.lines[0] == "Writing O2CB configuration: OK"
    assert "O2CB_ENABLED=false\n" in online.path("/etc/default/o2cb").read_text()
    assert online.modules() == {}
    assert online.mounts() == []
    # Disabled: start now does nothing.
    assert o2cb(online, "start").exit_code == 0
    assert online.modules() == {}


def test_enable_twice_leaves_the_file_alone(online: SimKernel) -> None:
    config = online.path("/etc/default/o2cb")
    stamp = config.stat().st_mtime_ns
    before = online.snapshot()
    run = o2cb(online, "enable")
    assert run.exit_code == 0
    assert run.lines == [SETTING_STACK, f"Cluster {CLUSTER} already online"]
    assert config.stat().st_mtime_ns == stamp
    assert online.snapshot() == before


def test_disable_refused_while_a_volume_is_mounted(mounted: SimKernel) -> None:
    before = mounted.snapshot()
    run = o2cb(mounted, "disable")
    assert run.exit_code == 1
    assert HEARTBEAT_STILL_ACTIVE in run.errors
    assert mounted.snapshot() == before


# -- a kernel refusal in the middle of online: rolled back -----------------------


@pytest.mark.parametrize("attribute", ["num", "keepalive_delay_ms", "local"])
def test_a_refused_attribute_leaves_no_half_built_cluster(
    loaded: SimKernel, monkeypatch: pytest.MonkeyPatch, attribute: str
) -> None:
    original = System.write_attribute

    def write_attribute(self: System, path: str, value: str) -> None:
        if path.endswith(f"/{attribute}"):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        original(self, path, value)

    monkeypatch.setattr(System, "write_attribute", write_attribute)
    before = loaded.snapshot()
    run = o2cb(loaded, "online")
    assert run.exit_code == 1
    assert run.errors == [run.errors[0]] and attribute in run.errors[0]
    assert "Invalid argument" in run.errors[0]
    assert run.lines[-1].endswith(": Failed")
    assert loaded.tree() == {}
    assert loaded.snapshot() == before


# -- the whole life cycle on each kind of kernel ---------------------------------


@pytest.mark.parametrize(
    ("profile", "config_mount"),
    [
        ("modern", "/sys/kernel/config"),
        ("builtin", "/sys/kernel/config"),
        ("legacy12", "/sys/kernel/config"),
        ("hbmode2007", "/sys/kernel/config"),
        ("legacy12", "/config"),
    ],
)
def test_life_cycle(
    make_sim: Callable[..., SimKernel],
    two_node_cluster_conf: Callable[..., str],
    profile: str,
    config_mount: str,
) -> None:
    sim = prepare(make_sim(profile=profile, config_mount=config_mount), two_node_cluster_conf)
    clean = sim.snapshot()
    assert o2cb(sim, "load").exit_code == 0
    assert o2cb(sim, "status").exit_code == 3
    assert o2cb(sim, "online-status").exit_code == 1
    assert o2cb(sim, "online").exit_code == 0
    assert_online(sim, config_mount)
    assert (o2cb(sim, "status").exit_code, o2cb(sim, "online-status").exit_code) == (0, 0)
    assert o2cb(sim, "offline").exit_code == 0
    assert [key for key, value in sim.tree().items() if value == "<dir>"] == []
    assert o2cb(sim, "restart").exit_code == 0
    assert_online(sim, config_mount)
    sim.mount_ocfs2_volume(CLUSTER)
    busy = sim.snapshot()
    assert o2cb(sim, "stop").exit_code == 1
    assert sim.snapshot() == busy
    sim.umount("/mnt/vol")
    assert o2cb(sim, "stop").exit_code == 0
    assert sim.snapshot() == clean


# -- o2hbmonitor -------------------------------------------------------------------


@pytest.fixture
def monitor_installed(machine: SimKernel) -> Callable[[], list[int]]:
    """A stand-in o2hbmonitor in the root's /sbin; returns a probe for its pids."""
    import psutil

    sbin = machine.root / "sbin"
    sbin.mkdir(exist_ok=True)
    program = sbin / "o2hbmonitor"
    program.write_text("#!/bin/sh\nwhile :; do sleep 1; done\n")
    program.chmod(0o755)

    def pids() -> list[int]:
        return [
            p.pid for p in psutil.process_iter(["cmdline"])
            if str(program) in (p.info["cmdline"] or [])
        ]

    yield pids
    for pid in pids():
        os.kill(pid, 9)


def test_online_starts_o2hbmonitor_and_offline_stops_it(
    machine: SimKernel, monitor_installed: Callable[[], list[int]]
) -> None:
    assert o2cb(machine, "start").exit_code == 0
    assert len(monitor_installed()) == 1
    assert o2cb(machine, "start").exit_code == 0
    assert len(monitor_installed()) == 1, "a second start starts no second monitor"
    assert o2cb(machine, "offline").exit_code == 0
    assert monitor_installed() == []


def test_a_refused_stop_leaves_o2hbmonitor_running(
    machine: SimKernel, monitor_installed: Callable[[], list[int]]
) -> None:
    assert o2cb(machine, "start").exit_code == 0
    machine.mount_ocfs2_volume(CLUSTER)
    assert o2cb(machine, "stop").exit_code == 1
    assert len(monitor_installed()) == 1


def test_an_edited_timeout_is_pending_not_partial(online: SimKernel) -> None:
    online.write_config(CONFIG.replace("RECONNECT_DELAY_MS=2500", "RECONNECT_DELAY_MS=4000"))
    run = o2cb(online, "status")
    assert run.exit_code == 0, run.stdout
    assert f'Checking O2CB cluster "{CLUSTER}": Online' in run.lines
    assert "  Network reconnect delay: 2500" in run.lines
    assert (
        "  Configured timeouts differ (a restart applies them): reconnect_delay_ms 2500 -> 4000"
        in run.lines
    )
    facts = json.loads(o2cb(online, "status", "--json").stdout)
    assert facts["online"] is True and facts["partial"] is False
    assert facts["pending_timeouts"] == {
        "reconnect_delay_ms": {"configured": 4000, "running": 2500}
    }
    assert o2cb(online, "online-status").exit_code == 0
    again = o2cb(online, "start")
    assert again.exit_code == 0
    assert f"Cluster {CLUSTER} already online" in again.lines
    assert online.tree()[f"{CLUSTER}/reconnect_delay_ms"] == "2500"


def test_no_pending_timeouts_when_the_configuration_matches(online: SimKernel) -> None:
    run = o2cb(online, "status")
    assert not any("Configured timeouts differ" in line for line in run.lines)
    assert json.loads(o2cb(online, "status", "--json").stdout)["pending_timeouts"] == {}


def test_stop_unloads_the_ocfs2_drivers_that_mkfs_loaded_before_start(
    machine: SimKernel,
) -> None:
    """mkfs.ocfs2 loads the stack's modules on demand; stop still means stopped.

    Only what other subsystems share (configfs, dlm) is left as it was found.
    """
    machine.load("ocfs2_stack_o2cb")  # as mkfs.ocfs2 leaves the kernel
    assert o2cb(machine, "start").exit_code == 0
    run = o2cb(machine, "stop")
    assert run.exit_code == 0, run.stderr
    assert set(machine.modules()) == {"configfs"}
    assert machine.mounts() == []
