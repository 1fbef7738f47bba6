"""The simulated kernel itself: it must behave like doc/kernel.md says the real one does."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from simkernel import BIN_DIR, SimKernel

from o2cb_init.plan import Planner, Step
from o2cb_init.report import Reporter
from o2cb_init.system import System

CONFIGFS = "/sys/kernel/config"
CLUSTER = f"{CONFIGFS}/cluster/ocfs2"
NODE1 = f"{CLUSTER}/node/node1"
NODE2 = f"{CLUSTER}/node/node2"


def run(sim: SimKernel, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run a fake as the tool does: by name from PATH, O2CB_ROOT in the environment."""
    return subprocess.run(
        list(argv), capture_output=True, text=True, env=sim.environment(), check=False
    )


def online(sim: SimKernel) -> System:
    """Modules loaded, configfs mounted, cluster ocfs2 with node1 (local) and node2."""
    sim.load("ocfs2_stack_o2cb", "ocfs2_dlmfs")
    sim.mount("configfs", CONFIGFS)
    system = System(root=str(sim.root))
    system.mkdir(CLUSTER)
    for node, address, number in (("node1", "127.0.0.1", "0"), ("node2", "10.0.0.2", "1")):
        path = f"{CLUSTER}/node/{node}"
        system.mkdir(path)
        system.write_attribute(f"{path}/ipv4_address", address)
        system.write_attribute(f"{path}/ipv4_port", "7777")
        system.write_attribute(f"{path}/num", number)
    system.write_attribute(f"{NODE1}/local", "1")
    return system


def oserror(call: Callable[[], object]) -> int:
    with pytest.raises(OSError) as caught:
        call()
    assert caught.value.errno is not None
    return caught.value.errno


# -- a fresh machine ------------------------------------------------------------------


def test_fresh_modern_root(sim: SimKernel) -> None:
    assert sim.modules() == {}
    assert "configfs" not in sim.filesystems()
    assert {"proc", "sysfs", "ext4"} <= sim.filesystems()
    assert sim.mounts() == []
    assert not (sim.root / "sys/kernel/config").exists()  # configfs makes it as it loads
    assert not (sim.root / "sys/fs/ocfs2").exists()
    assert not (sim.root / "dlm").exists()
    assert (sim.root / "proc/sys/kernel/hostname").read_text() == "node1\n"
    assert sim.configfs() is None
    assert sim.tree() == {}


def test_fakes_are_first_on_path(sim: SimKernel) -> None:
    assert os.environ["PATH"].split(os.pathsep)[0] == str(BIN_DIR)
    assert os.environ["O2CB_ROOT"] == str(sim.root)
    assert System(root=str(sim.root)).which("modprobe") == str(BIN_DIR / "modprobe")


def test_fakes_refuse_a_missing_root(tmp_path: Path) -> None:
    env = dict(os.environ, O2CB_ROOT=str(tmp_path))
    result = subprocess.run(
        [str(BIN_DIR / "modprobe"), "configfs"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 1
    assert "not a simulated root" in result.stderr


# -- modprobe -------------------------------------------------------------------------


def test_modprobe_loads_dependencies_first(sim: SimKernel) -> None:
    result = run(sim, "modprobe", "ocfs2_stack_o2cb")
    assert result.returncode == 0, result.stderr
    assert sim.modules() == {
        "configfs": 1,
        "ocfs2_nodemanager": 2,
        "ocfs2_dlm": 1,
        "ocfs2_stackglue": 1,
        "ocfs2_stack_o2cb": 0,
    }
    assert sim.module_users("ocfs2_nodemanager") == ["ocfs2_stack_o2cb", "ocfs2_dlm"]
    assert sim.filesystems() >= {"configfs"}
    assert sim.sysfs()["loaded_cluster_plugins"] == "o2cb"
    assert sim.sysfs()["cluster_stack"] == "o2cb"
    assert sim.sysfs()["max_locking_protocol"] == "0.0"


def test_proc_modules_has_the_real_format(sim: SimKernel) -> None:
    sim.load("ocfs2_dlmfs")
    lines = (sim.root / "proc/modules").read_text().splitlines()
    assert lines[0] == "ocfs2_dlmfs 32768 0 - Live 0x0000000000000000"
    nodemanager = next(line for line in lines if line.startswith("ocfs2_nodemanager "))
    assert nodemanager.split()[2:5] == ["1", "ocfs2_dlmfs,", "Live"]


def test_modprobe_of_a_loaded_module_changes_nothing(sim: SimKernel) -> None:
    sim.load("ocfs2_dlmfs")
    before = sim.snapshot()
    result = run(sim, "modprobe", "ocfs2_dlmfs")
    assert (result.returncode, result.stderr) == (0, "")
    assert sim.snapshot() == before


def test_modprobe_of_an_unknown_module(sim: SimKernel) -> None:
    result = run(sim, "modprobe", "ocfs2_stack_nonesuch")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "modprobe: FATAL: Module ocfs2_stack_nonesuch not found in directory /lib/modules/"
    )
    assert sim.modules() == {}


def test_modprobe_accepts_dashes_for_underscores(sim: SimKernel) -> None:
    assert run(sim, "modprobe", "ocfs2-dlmfs").returncode == 0
    assert "ocfs2_dlmfs" in sim.modules()


@pytest.mark.parametrize(
    "argv",
    [[], ["-q", "configfs"], ["configfs", "ocfs2"], ["-r"], ["-r", "-v", "configfs"]],
)
def test_modprobe_is_strict_about_its_arguments(sim: SimKernel, argv: list[str]) -> None:
    result = run(sim, "modprobe", *argv)
    assert result.returncode == 1
    assert "simulated modprobe" in result.stderr
    assert sim.modules() == {}


def test_remove_refuses_a_module_others_depend_on(sim: SimKernel) -> None:
    sim.load("ocfs2_stack_o2cb")
    result = run(sim, "modprobe", "-r", "ocfs2_dlm")
    assert result.returncode == 1
    assert result.stderr.strip() == "modprobe: FATAL: Module ocfs2_dlm is in use."
    assert "ocfs2_dlm" in sim.modules()


def test_remove_takes_unused_dependencies_along(sim: SimKernel) -> None:
    sim.load("ocfs2_stack_o2cb", "ocfs2_dlmfs")
    assert run(sim, "modprobe", "-r", "ocfs2_dlmfs").returncode == 0
    # stackglue and nodemanager are still used by ocfs2_stack_o2cb
    assert set(sim.modules()) == {
        "configfs", "ocfs2_nodemanager", "ocfs2_dlm", "ocfs2_stackglue", "ocfs2_stack_o2cb"
    }
    assert "ocfs2_dlmfs" not in sim.filesystems()
    assert run(sim, "modprobe", "-r", "ocfs2_stack_o2cb").returncode == 0
    assert sim.modules() == {}
    assert "configfs" not in sim.filesystems()
    assert not (sim.root / "sys/fs/ocfs2").exists()


def test_remove_keeps_a_dependency_with_a_holder(sim: SimKernel) -> None:
    sim.load("ocfs2_nodemanager")
    sim.mount("configfs", CONFIGFS)
    assert sim.modules() == {"configfs": 2, "ocfs2_nodemanager": 0}
    assert run(sim, "modprobe", "-r", "ocfs2_nodemanager").returncode == 0
    assert sim.modules() == {"configfs": 1}  # mounted: stays
    result = run(sim, "modprobe", "-r", "configfs")
    assert result.returncode == 1
    assert "Module configfs is in use." in result.stderr


def test_remove_of_a_module_not_loaded(sim: SimKernel) -> None:
    result = run(sim, "modprobe", "-r", "ocfs2_dlmfs")
    assert result.returncode == 1
    assert result.stderr.strip() == "modprobe: FATAL: Module ocfs2_dlmfs is not in kernel."


def test_a_cluster_directory_holds_the_node_manager(sim: SimKernel) -> None:
    system = online(sim)
    # dependents ocfs2_dlmfs, ocfs2_stack_o2cb, ocfs2_dlm + 2 x (cluster + 2 nodes):
    # configfs pins the subsystem's module and the item's, as Debian's kernel shows
    assert sim.modules()["ocfs2_nodemanager"] == 9
    for module in ("ocfs2_stack_o2cb", "ocfs2_dlmfs"):
        assert run(sim, "modprobe", "-r", module).returncode == 0
    assert sim.modules()["ocfs2_nodemanager"] == 6
    result = run(sim, "modprobe", "-r", "ocfs2_nodemanager")
    assert result.returncode == 1
    assert "Module ocfs2_nodemanager is in use." in result.stderr
    for path in (NODE1, NODE2, CLUSTER):
        system.rmdir(path)
    assert sim.modules()["ocfs2_nodemanager"] == 0
    assert run(sim, "modprobe", "-r", "ocfs2_nodemanager").returncode == 0
    assert set(sim.modules()) == {"configfs"}
    assert not (sim.root / "sys/kernel/config/cluster").exists()


def test_user_stack_plugin(sim: SimKernel) -> None:
    assert run(sim, "modprobe", "ocfs2_stack_user").returncode == 0
    assert set(sim.modules()) == {"configfs", "dlm", "ocfs2_stackglue", "ocfs2_stack_user"}
    assert sim.sysfs()["loaded_cluster_plugins"] == "user"
    assert (sim.root / "dev/ocfs2_control").exists()
    sim.load("ocfs2_stack_o2cb")
    assert sim.sysfs()["loaded_cluster_plugins"].split() == ["user", "o2cb"]
    assert run(sim, "modprobe", "-r", "ocfs2_stack_user").returncode == 0
    assert not (sim.root / "dev/ocfs2_control").exists()
    assert "dlm" not in sim.modules()
    assert sim.sysfs()["loaded_cluster_plugins"] == "o2cb"


def test_ocfs2_module_sets_the_locking_protocol(sim: SimKernel) -> None:
    sim.load("ocfs2")
    assert "ocfs2" in sim.filesystems()
    assert set(sim.modules()) == {"ocfs2", "ocfs2_stackglue"}
    assert sim.sysfs()["max_locking_protocol"] == "1.0"
    line = next(x for x in (sim.root / "proc/filesystems").read_text().splitlines() if "ocfs2" in x)
    assert line == "\tocfs2"
    assert run(sim, "modprobe", "-r", "ocfs2").returncode == 0
    assert sim.modules() == {}


# -- built-in drivers -----------------------------------------------------------------


def test_builtin_drivers_are_there_and_never_leave(make_sim: Callable[..., SimKernel]) -> None:
    sim = make_sim(profile="builtin")
    assert sim.modules() == {}
    assert {"configfs", "ocfs2_dlmfs"} <= sim.filesystems()
    assert sim.sysfs()["loaded_cluster_plugins"] == "o2cb"
    result = run(sim, "modprobe", "ocfs2_stack_o2cb")
    assert (result.returncode, sim.modules()) == (0, {})
    result = run(sim, "modprobe", "-r", "configfs")
    assert result.returncode == 1
    assert result.stderr.strip() == "modprobe: FATAL: Module configfs is builtin."
    mountpoint = str(sim.root / CONFIGFS[1:])
    assert run(sim, "mount", "-t", "configfs", "configfs", mountpoint).returncode == 0
    assert (sim.root / "sys/kernel/config/cluster").is_dir()


def test_builtin_profile_still_loads_modular_drivers(make_sim: Callable[..., SimKernel]) -> None:
    sim = make_sim(profile="builtin")
    assert run(sim, "modprobe", "ocfs2").returncode == 0
    assert sim.modules() == {"ocfs2": 0}  # stackglue is built in: no line for it
    assert run(sim, "modprobe", "-r", "ocfs2").returncode == 0
    assert sim.modules() == {}
    assert (sim.root / "sys/fs/ocfs2").is_dir()


# -- mount and umount -----------------------------------------------------------------


def test_configfs_tree_shows_only_while_mounted(sim: SimKernel) -> None:
    mountpoint = str(sim.root / "sys/kernel/config")
    sim.load("ocfs2_nodemanager")
    assert not (sim.root / "sys/kernel/config/cluster").exists()
    assert sim.tree() == {}  # cluster/ exists but holds no cluster yet
    assert run(sim, "mount", "-t", "configfs", "configfs", mountpoint).returncode == 0
    assert sim.configfs() == sim.root / "sys/kernel/config"
    assert (sim.root / "sys/kernel/config/cluster").is_dir()
    assert sim.mounts() == [(mountpoint, "configfs")]
    assert (sim.root / "proc/mounts").read_text() == f"configfs {mountpoint} configfs rw 0 0\n"
    assert sim.is_mounted("/sys/kernel/config")
    System(root=str(sim.root)).mkdir(CLUSTER)
    assert run(sim, "umount", mountpoint).returncode == 0
    assert list((sim.root / "sys/kernel/config").iterdir()) == []
    assert sim.configfs() is None
    assert sim.tree()["ocfs2"] == "<dir>"  # kept by the kernel while unmounted
    sim.mount("configfs", CONFIGFS)
    assert (sim.root / CLUSTER[1:] / "idle_timeout_ms").read_text() == "30000\n"


def test_configfs_cluster_appears_when_node_manager_loads_while_mounted(sim: SimKernel) -> None:
    sim.load("configfs")
    sim.mount("configfs", CONFIGFS)
    assert list((sim.root / "sys/kernel/config").iterdir()) == []
    sim.load("ocfs2_dlm")
    assert (sim.root / "sys/kernel/config/cluster").is_dir()
    sim.unload("ocfs2_dlm")
    assert not (sim.root / "sys/kernel/config/cluster").exists()


def test_mount_of_an_unknown_filesystem(sim: SimKernel) -> None:
    mountpoint = str(sim.root / "sys/kernel/config")
    result = run(sim, "mount", "-t", "configfs", "configfs", mountpoint)
    assert result.returncode == 32
    first = result.stderr.splitlines()[0]
    assert first == f"mount: {mountpoint}: unknown filesystem type 'configfs'."
    assert sim.mounts() == []


def test_mount_needs_an_existing_mount_point(sim: SimKernel) -> None:
    sim.load("ocfs2_dlmfs")
    mountpoint = str(sim.root / "dlm")
    result = run(sim, "mount", "-t", "ocfs2_dlmfs", "ocfs2_dlmfs", mountpoint)
    assert result.returncode == 32
    assert f"mount: {mountpoint}: mount point does not exist." in result.stderr
    (sim.root / "dlm").mkdir()
    result = run(sim, "mount", "-t", "ocfs2_dlmfs", "ocfs2_dlmfs", mountpoint)
    assert result.returncode == 0, result.stderr
    assert sim.is_mounted("/dlm")
    assert sim.modules()["ocfs2_dlmfs"] == 1


def test_mount_twice_fails(sim: SimKernel) -> None:
    sim.load("configfs")
    sim.mount("configfs", CONFIGFS)
    result = run(sim, "mount", "-t", "configfs", "configfs", str(sim.root / CONFIGFS[1:]))
    assert result.returncode == 32
    assert "already mounted" in result.stderr
    assert len(sim.mounts()) == 1


def test_mount_is_strict_about_its_arguments(sim: SimKernel) -> None:
    sim.load("configfs")
    result = run(sim, "mount", "-t", "configfs", str(sim.root / CONFIGFS[1:]))
    assert result.returncode == 1
    result = run(sim, "mount", "-o", "ro", "-t", "configfs", "x", str(sim.root / CONFIGFS[1:]))
    assert result.returncode == 1
    assert sim.mounts() == []


def test_umount_errors(sim: SimKernel) -> None:
    sim.load("ocfs2_dlmfs")
    dlm = str(sim.root / "dlm")
    (sim.root / "dlm").mkdir()
    result = run(sim, "umount", dlm)
    assert (result.returncode, result.stderr.strip()) == (32, f"umount: {dlm}: not mounted.")
    sim.mount("ocfs2_dlmfs", "/dlm")
    sim.set_busy("/dlm")
    result = run(sim, "umount", dlm)
    assert (result.returncode, result.stderr.strip()) == (32, f"umount: {dlm}: target is busy.")
    assert sim.is_mounted("/dlm")
    sim.set_busy("/dlm", False)
    assert run(sim, "umount", dlm).returncode == 0
    assert not sim.is_mounted("/dlm")
    assert sim.modules()["ocfs2_dlmfs"] == 0


def test_a_mount_hides_what_the_mount_point_held(sim: SimKernel) -> None:
    sim.load("ocfs2_dlmfs")
    (sim.root / "dlm").mkdir()
    (sim.root / "dlm/underneath").write_text("x")
    sim.mount("ocfs2_dlmfs", "/dlm")
    assert list((sim.root / "dlm").iterdir()) == []
    sim.umount("/dlm")
    assert (sim.root / "dlm/underneath").read_text() == "x"


def test_mounted_ocfs2_volume_holds_everything(sim: SimKernel) -> None:
    system = online(sim)
    sim.mount_ocfs2_volume("ocfs2")
    assert sim.modules()["ocfs2"] == 1
    assert (str(sim.root / "mnt/vol"), "ocfs2") in sim.mounts()
    tree = sim.tree()
    regions = [k for k, v in tree.items() if k.startswith("ocfs2/heartbeat/") and v == "<dir>"]
    assert len(regions) == 1
    assert sim.held_regions() == regions
    assert sim.sysfs()["active_cluster_plugin"] == "o2cb"
    assert oserror(lambda: system.rmdir(CLUSTER)) == errno.EBUSY
    assert oserror(lambda: system.rmdir(f"{CONFIGFS}/cluster/{regions[0]}")) == errno.EBUSY
    assert oserror(lambda: system.rmdir(NODE1)) == errno.EBUSY  # the local node
    assert oserror(lambda: system.write_attribute("/sys/fs/ocfs2/cluster_stack", "pcmk")) == (
        errno.EBUSY
    )
    assert run(sim, "modprobe", "-r", "ocfs2").returncode == 1
    assert run(sim, "umount", str(sim.root / "mnt/vol")).returncode == 0
    assert sim.held_regions() == []
    assert sim.modules()["ocfs2"] == 0
    assert sim.sysfs()["active_cluster_plugin"] == ""
    system.rmdir(NODE1)
    system.rmdir(NODE2)
    system.rmdir(CLUSTER)
    assert sim.tree() == {}


def test_ocfs2_mount_needs_a_cluster(sim: SimKernel) -> None:
    sim.load("ocfs2")
    (sim.root / "mnt").mkdir()
    result = run(sim, "mount", "-t", "ocfs2", "/dev/sdb", str(sim.root / "mnt"))
    assert result.returncode != 0
    assert "cluster" in result.stderr
    with pytest.raises(RuntimeError):
        sim.mount_ocfs2_volume("ocfs2")


def test_snapshot_sees_each_kind_of_change(sim: SimKernel) -> None:
    empty = sim.snapshot()
    sim.load("configfs")
    loaded = sim.snapshot()
    assert loaded != empty
    sim.mount("configfs", CONFIGFS)
    assert sim.snapshot() != loaded


# -- configfs rules (o2nm) --------------------------------------------------------------


def test_cluster_directory_gets_its_attributes(sim: SimKernel) -> None:
    online(sim)
    tree = sim.tree()
    assert {k: tree[k] for k in tree if k.count("/") <= 2 and "node/" not in k} == {
        "ocfs2": "<dir>",
        "ocfs2/idle_timeout_ms": "30000",
        "ocfs2/keepalive_delay_ms": "2000",
        "ocfs2/reconnect_delay_ms": "2000",
        "ocfs2/fence_method": "reset",
        "ocfs2/node": "<dir>",
        "ocfs2/heartbeat": "<dir>",
        "ocfs2/heartbeat/dead_threshold": "31",
        "ocfs2/heartbeat/mode": "local",
    }
    assert {k: v for k, v in tree.items() if k.startswith("ocfs2/node/node1")} == {
        "ocfs2/node/node1": "<dir>",
        "ocfs2/node/node1/num": "0",
        "ocfs2/node/node1/ipv4_address": "127.0.0.1",
        "ocfs2/node/node1/ipv4_port": "7777",
        "ocfs2/node/node1/local": "1",
    }
    assert tree["ocfs2/node/node2/local"] == "0"


def test_a_fresh_node_shows_the_kernels_zero_values(sim: SimKernel) -> None:
    sim.load("ocfs2_nodemanager")
    sim.mount("configfs", CONFIGFS)
    system = System(root=str(sim.root))
    system.mkdir(CLUSTER)
    system.mkdir(NODE1)
    assert {k: v for k, v in sim.tree().items() if k.startswith("ocfs2/node/node1/")} == {
        "ocfs2/node/node1/num": "0",
        "ocfs2/node/node1/ipv4_address": "0.0.0.0",
        "ocfs2/node/node1/ipv4_port": "0",
        "ocfs2/node/node1/local": "0",
    }


def test_only_one_cluster_directory(sim: SimKernel) -> None:
    system = online(sim)
    assert oserror(lambda: system.mkdir(f"{CONFIGFS}/cluster/other")) == errno.ENOSPC
    assert oserror(lambda: system.mkdir(CLUSTER)) == errno.EEXIST
    assert not (sim.root / CONFIGFS[1:] / "cluster/other").exists()


def test_mkdir_only_where_o2nm_makes_items(sim: SimKernel) -> None:
    system = online(sim)
    assert oserror(lambda: system.mkdir(f"{CONFIGFS}/stray")) == errno.EPERM
    assert oserror(lambda: system.mkdir(f"{CLUSTER}/stray")) == errno.EPERM
    assert oserror(lambda: system.mkdir(f"{NODE1}/stray")) == errno.EPERM
    assert oserror(lambda: system.mkdir(f"{CONFIGFS}/cluster/x/node/y")) == errno.ENOENT


def test_node_attribute_order(sim: SimKernel) -> None:
    online(sim)
    system = System(root=str(sim.root))
    node = f"{CLUSTER}/node/node3"
    system.mkdir(node)
    assert oserror(lambda: system.write_attribute(f"{node}/num", "2")) == errno.EINVAL
    assert oserror(lambda: system.write_attribute(f"{node}/local", "1")) == errno.EINVAL
    system.write_attribute(f"{node}/ipv4_address", "10.0.0.3")
    assert oserror(lambda: system.write_attribute(f"{node}/num", "2")) == errno.EINVAL
    system.write_attribute(f"{node}/ipv4_port", "7777")
    assert oserror(lambda: system.write_attribute(f"{node}/local", "0")) == errno.EINVAL
    system.write_attribute(f"{node}/num", "2")
    system.write_attribute(f"{node}/local", "0")
    assert sim.tree()["ocfs2/node/node3/num"] == "2"


def test_node_values_are_checked(sim: SimKernel) -> None:
    system = online(sim)
    node = f"{CLUSTER}/node/node3"
    system.mkdir(node)

    def write(attribute: str, value: str) -> int:
        return oserror(lambda: system.write_attribute(f"{node}/{attribute}", value))

    assert write("ipv4_address", "10.0.0.256") == errno.ERANGE
    assert write("ipv4_address", "999.1.1.1") == errno.ERANGE
    assert write("ipv4_address", "not-an-address") == errno.EINVAL
    assert write("ipv4_address", "10.0.0.2") == errno.EEXIST  # node2's
    assert write("ipv4_port", "0") == errno.EINVAL
    assert write("ipv4_port", "65535") == errno.ERANGE
    assert write("ipv4_port", "77x") == errno.EINVAL
    system.write_attribute(f"{node}/ipv4_address", "10.0.0.3")
    system.write_attribute(f"{node}/ipv4_port", "7777")
    assert write("ipv4_address", "10.0.0.4") == errno.EBUSY  # set once only
    assert write("num", "255") == errno.ERANGE
    assert write("num", "1") == errno.EEXIST  # node2's
    system.write_attribute(f"{node}/num", "254")
    assert write("num", "3") == errno.EBUSY
    assert write("local", "1") == errno.EBUSY  # node1 is the local node already
    assert sim.tree()["ocfs2/node/node3/ipv4_address"] == "10.0.0.3"


def test_timeouts_keep_keepalive_below_idle(sim: SimKernel) -> None:
    system = online(sim)
    idle, keepalive = f"{CLUSTER}/idle_timeout_ms", f"{CLUSTER}/keepalive_delay_ms"
    assert oserror(lambda: system.write_attribute(keepalive, "30000")) == errno.EINVAL
    assert oserror(lambda: system.write_attribute(keepalive, "40000")) == errno.EINVAL
    assert oserror(lambda: system.write_attribute(idle, "2000")) == errno.EINVAL
    assert oserror(lambda: system.write_attribute(idle, "1000")) == errno.EINVAL
    assert oserror(lambda: system.write_attribute(idle, "0")) == errno.EINVAL
    assert oserror(lambda: system.write_attribute(idle, "abc")) == errno.EINVAL
    system.write_attribute(idle, "60000")
    system.write_attribute(keepalive, "5000")
    system.write_attribute(f"{CLUSTER}/reconnect_delay_ms", "3000")
    tree = sim.tree()
    assert (tree["ocfs2/idle_timeout_ms"], tree["ocfs2/keepalive_delay_ms"]) == ("60000", "5000")
    assert tree["ocfs2/reconnect_delay_ms"] == "3000"


def test_heartbeat_attributes(sim: SimKernel) -> None:
    system = online(sim)
    mode = f"{CLUSTER}/heartbeat/mode"
    assert oserror(lambda: system.write_attribute(mode, "disk")) == errno.EINVAL
    system.write_attribute(mode, "global")
    assert sim.tree()["ocfs2/heartbeat/mode"] == "global"
    threshold = f"{CLUSTER}/heartbeat/dead_threshold"
    system.write_attribute(threshold, "61")
    assert sim.tree()["ocfs2/heartbeat/dead_threshold"] == "61"
    assert oserror(lambda: system.write_attribute(threshold, "x")) == errno.EINVAL
    assert oserror(lambda: system.write_attribute(f"{CLUSTER}/fence_method", "off")) == errno.EINVAL
    system.write_attribute(f"{CLUSTER}/fence_method", "panic")
    assert sim.tree()["ocfs2/fence_method"] == "panic"


def test_configfs_files_are_not_created_by_writing(sim: SimKernel) -> None:
    system = online(sim)
    assert oserror(lambda: system.write_attribute(f"{CLUSTER}/nonesuch", "1")) == errno.ENOENT
    assert not (sim.root / CLUSTER[1:] / "nonesuch").exists()
    assert oserror(lambda: system.write_attribute(f"{CLUSTER}/node", "1")) == errno.EISDIR


def test_rmdir_rules(sim: SimKernel) -> None:
    system = online(sim)
    assert oserror(lambda: system.rmdir(CLUSTER)) == errno.ENOTEMPTY
    assert oserror(lambda: system.rmdir(f"{CLUSTER}/node")) == errno.EPERM
    assert oserror(lambda: system.rmdir(f"{CONFIGFS}/cluster")) == errno.EPERM
    assert oserror(lambda: system.rmdir(f"{CLUSTER}/node/nonesuch")) == errno.ENOENT
    system.rmdir(NODE2)
    assert not (sim.root / NODE2[1:]).exists()
    sim.add_heartbeat_region("ocfs2")
    assert oserror(lambda: system.rmdir(NODE1)) == errno.EBUSY  # the volume depends on it
    assert oserror(lambda: system.rmdir(CLUSTER)) == errno.EBUSY
    region = f"{CLUSTER}/heartbeat/0123456789ABCDEF0123456789ABCDEF"
    assert oserror(lambda: system.rmdir(region)) == errno.EBUSY
    assert sim.tree()["ocfs2/heartbeat/0123456789ABCDEF0123456789ABCDEF/dev"] == "sdb"


def test_an_address_freed_by_rmdir_can_be_reused(sim: SimKernel) -> None:
    system = online(sim)
    system.rmdir(NODE2)
    node = f"{CLUSTER}/node/node9"
    system.mkdir(node)
    system.write_attribute(f"{node}/ipv4_address", "10.0.0.2")
    system.write_attribute(f"{node}/ipv4_port", "7777")
    system.write_attribute(f"{node}/num", "1")
    assert sim.tree()["ocfs2/node/node9/num"] == "1"


def test_stackglue_sysfs_rules(sim: SimKernel) -> None:
    system = System(root=str(sim.root))
    stack = "/sys/fs/ocfs2/cluster_stack"
    assert oserror(lambda: system.write_attribute(stack, "o2cb")) == errno.ENOENT
    sim.load("ocfs2_stackglue")
    assert oserror(lambda: system.write_attribute(stack, "pacemaker")) == errno.EINVAL
    assert oserror(lambda: system.write_attribute(stack, "")) == errno.EINVAL
    system.write_attribute(stack, "pcmk")
    assert sim.sysfs()["cluster_stack"] == "pcmk"
    plugins = "/sys/fs/ocfs2/loaded_cluster_plugins"
    assert oserror(lambda: system.write_attribute(plugins, "o2cb")) == errno.EACCES
    assert oserror(lambda: system.mkdir("/sys/fs/ocfs2/x")) == errno.EPERM


def test_dry_run_changes_nothing(sim: SimKernel) -> None:
    sim.load("ocfs2_stack_o2cb")
    sim.mount("configfs", CONFIGFS)
    before = sim.snapshot()
    system = System(root=str(sim.root), dry_run=True)
    step = Step("changes", lambda: None)
    Planner(system, Reporter()).open = step
    system.mkdir(CLUSTER)
    system.write_attribute("/sys/fs/ocfs2/cluster_stack", "toolong")
    assert step.changes == [
        f"create directory {CLUSTER}",
        "write 'toolong' to /sys/fs/ocfs2/cluster_stack",
    ]
    assert sim.snapshot() == before


def test_paths_outside_the_pseudo_filesystems_are_left_alone(sim: SimKernel) -> None:
    system = System(root=str(sim.root))
    system.mkdir("/dlm")
    system.mkdir("/etc/ocfs2", parents=True)
    system.write_attribute("/etc/ocfs2/x", "1")
    assert (sim.root / "etc/ocfs2/x").read_text() == "1\n"


def test_rules_reach_a_subprocess(sim: SimKernel) -> None:
    online(sim)
    code = (
        "import errno\n"
        "from o2cb_init.system import System\n"
        f"s = System(root={str(sim.root)!r})\n"
        "try:\n"
        f"    s.mkdir({CONFIGFS + '/cluster/second'!r})\n"
        "except OSError as e:\n"
        "    print(errno.errorcode[e.errno])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=sim.environment()
    )
    assert result.stdout.strip() == "ENOSPC", result.stderr


# -- older kernels ------------------------------------------------------------------------


def test_legacy12_profile(make_sim: Callable[..., SimKernel]) -> None:
    sim = make_sim(profile="legacy12")
    assert run(sim, "modprobe", "ocfs2_stack_o2cb").returncode == 1
    assert run(sim, "modprobe", "ocfs2_stackglue").returncode == 1
    assert run(sim, "modprobe", "ocfs2_dlmfs").returncode == 0
    assert sim.modules() == {
        "configfs": 1, "ocfs2_nodemanager": 2, "ocfs2_dlm": 1, "ocfs2_dlmfs": 0
    }
    assert not (sim.root / "sys/fs/ocfs2").exists()
    threshold = sim.root / "proc/fs/ocfs2_nodemanager/hb_dead_threshold"
    assert threshold.read_text() == "7\n"
    sim.mount("configfs", CONFIGFS)
    system = System(root=str(sim.root))
    system.write_attribute("/proc/fs/ocfs2_nodemanager/hb_dead_threshold", "31")
    assert threshold.read_text() == "31\n"
    system.mkdir(CLUSTER)
    assert sim.tree() == {"ocfs2": "<dir>", "ocfs2/heartbeat": "<dir>", "ocfs2/node": "<dir>"}
    system.rmdir(CLUSTER)
    sim.umount(CONFIGFS)
    sim.unload("ocfs2_dlmfs")
    assert sim.modules() == {}
    assert not threshold.exists()


def test_hbmode2007_profile(make_sim: Callable[..., SimKernel]) -> None:
    sim = make_sim(profile="hbmode2007")
    sim.load("ocfs2_dlmfs")
    sim.mount("configfs", CONFIGFS)
    top = sim.root / "sys/kernel/config/cluster"
    assert (top / "heartbeat_mode").read_text() == "disk\n"
    assert (top / "heartbeat_available_modes").read_text() == ""
    assert not (sim.root / "sys/fs/ocfs2").exists()
    system = System(root=str(sim.root))
    mode = f"{CONFIGFS}/cluster/heartbeat_mode"
    assert oserror(lambda: system.write_attribute(mode, "user")) == errno.EINVAL
    assert run(sim, "modprobe", "ocfs2_user_heartbeat").returncode == 0
    assert run(sim, "modprobe", "ocfs2_disk_heartbeat").returncode == 0
    assert (top / "heartbeat_available_modes").read_text().split() == ["user", "disk"]
    system.write_attribute(mode, "user")
    assert (top / "heartbeat_mode").read_text() == "user\n"
    available = f"{CONFIGFS}/cluster/heartbeat_available_modes"
    assert oserror(lambda: system.write_attribute(available, "x")) == errno.EACCES
    system.mkdir(CLUSTER)
    assert "ocfs2/idle_timeout_ms" in sim.tree()
    assert "ocfs2/heartbeat/mode" not in sim.tree()
    assert "ocfs2/fence_method" not in sim.tree()
    assert run(sim, "modprobe", "-r", "ocfs2_user_heartbeat").returncode == 0
    assert (top / "heartbeat_available_modes").read_text().split() == ["disk"]


def test_config_mount_for_kernels_without_sys_kernel_config(
    make_sim: Callable[..., SimKernel],
) -> None:
    sim = make_sim(config_mount="/config")
    assert not (sim.root / "sys/kernel/config").exists()
    assert (sim.root / "config").is_dir()
    assert sim.config_mount == "/config"
    sim.load("ocfs2_nodemanager")
    assert run(sim, "mount", "-t", "configfs", "configfs", str(sim.root / "config")).returncode == 0
    assert sim.configfs() == sim.root / "config"
    system = System(root=str(sim.root))
    system.mkdir("/config/cluster/ocfs2")
    assert oserror(lambda: system.mkdir("/config/cluster/two")) == errno.ENOSPC
    assert sim.tree()["ocfs2/idle_timeout_ms"] == "30000"


def test_make_sim_builds_separate_roots(make_sim: Callable[..., SimKernel]) -> None:
    first = make_sim()
    second = make_sim(hostname="node2")
    assert first.root != second.root
    assert os.environ["O2CB_ROOT"] == str(second.root)
    second.load("configfs")
    assert first.modules() == {}


def test_cluster_conf_helper(two_node_cluster_conf: Callable[..., str], sim: SimKernel) -> None:
    text = two_node_cluster_conf(hostname="alpha", name="web")
    path = sim.write_cluster_conf(text)
    assert path == sim.root / "etc/ocfs2/cluster.conf"
    content = path.read_text()
    assert "\tname = alpha\n" in content and "\tname = node2\n" in content
    assert "\tip_address = 127.0.0.1\n\tnumber = 0\n" in content
    assert "\tip_address = 10.0.0.2\n\tnumber = 1\n" in content
    assert content.count("\tcluster = web\n") == 2
    assert content.endswith("cluster:\n\tnode_count = 2\n\tname = web\n")
