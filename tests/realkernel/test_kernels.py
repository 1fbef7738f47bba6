"""What each kernel exposes to o2cb, read from the boots the other tests share.

o2cb probes the kernel (/proc/filesystems, /proc/modules, /sys/fs/ocfs2,
configfs) instead of assuming a version.  These tests pin down, per kernel,
the interface it relies on, so that a kernel that moves any of it fails
here by name, before a scenario fails for a reason that is harder to read.
doc/kernel.md, "The interface of the three tested kernels", states the same
facts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import harness
from .harness import Boot

pytestmark = pytest.mark.realkernel

STACKGLUE_FILES = {
    "active_cluster_plugin",
    "cluster_stack",
    "dlm_recover_callback_support",
    "loaded_cluster_plugins",
    "max_locking_protocol",
}
CLUSTER_ATTRIBUTES = {
    "fence_method",
    "idle_timeout_ms",
    "keepalive_delay_ms",
    "reconnect_delay_ms",
    "heartbeat/dead_threshold",
    "heartbeat/mode",
}
NODE_ATTRIBUTES = {"ipv4_address", "ipv4_port", "local", "num"}
REGION_ATTRIBUTES = {"block_bytes", "blocks", "dev", "pid", "start_block"}
# Who holds whom after `start` on the o2cb stack (/proc/modules' user lists).
O2CB_MODULE_USERS = {
    "configfs": {"ocfs2_nodemanager"},
    "ocfs2_stackglue": {"ocfs2_dlmfs", "ocfs2_stack_o2cb"},
    "ocfs2_nodemanager": {"ocfs2_dlmfs", "ocfs2_stack_o2cb", "ocfs2_dlm"},
    "ocfs2_dlm": {"ocfs2_stack_o2cb"},
    "ocfs2_stack_o2cb": set(),
    "ocfs2_dlmfs": set(),
}
# How each suite's package ships its modules.
MODULE_SUFFIX = {"bullseye": ".ko", "bookworm": ".ko", "trixie": ".ko.xz"}


def added_modules(boot: Boot, snapshot: dict[str, Any]) -> dict[str, set[str]]:
    baseline = set(boot.results["baseline"]["modules"])
    return {
        name: set(row["users"])
        for name, row in snapshot["module_refs"].items()
        if name not in baseline
    }


def test_the_guest_runs_the_kernel_asked_for(
    boots: dict[str, Boot], kernel: harness.Kernel
) -> None:
    for boot in boots.values():
        assert boot.results.get("uname") == kernel.version, f"{boot.tag} {boot.problems}"


def test_module_files_as_the_suite_ships_them(kernel: harness.Kernel) -> None:
    """bookworm's kmod loads trixie's xz-compressed modules: the scenarios prove it."""
    if kernel.suite not in MODULE_SUFFIX:
        pytest.skip(f"kernel {kernel} is not one of the suites' kernels")
    suffix = MODULE_SUFFIX[kernel.suite]
    dep = (Path("/lib/modules") / str(kernel.version) / "modules.dep").read_text()
    assert f"kernel/fs/ocfs2/ocfs2_stack_o2cb{suffix}:" in dep, f"kernel {kernel.label}"


def test_stack_glue_files(boots: dict[str, Boot], kernel: harness.Kernel) -> None:
    result = boots["ours"].scenario("start")
    sysfs = result.snap("after")["sys_fs_ocfs2"] or {}
    result.check(set(sysfs) == STACKGLUE_FILES, f"/sys/fs/ocfs2 holds {sorted(sysfs)}")
    mounted = boots["ours"].scenario("data-safety")
    device = mounted.notes["device"].rsplit("/", 1)[-1]
    sysfs = mounted.snap("mounted")["sys_fs_ocfs2"] or {}
    mounted.check(
        f"{device}/filecheck/" in sysfs and set(sysfs) >= STACKGLUE_FILES,
        f"with {device} mounted, /sys/fs/ocfs2 holds {sorted(sysfs)}",
    )


def test_o2cb_configfs_attributes(boots: dict[str, Boot], kernel: harness.Kernel) -> None:
    result = boots["ours"].scenario("data-safety")
    tree = result.snap("mounted")["configfs"]
    top = "cluster/ocfs2/"
    files = {path[len(top) :] for path in tree if path.startswith(top) and not path.endswith("/")}
    cluster = {path for path in files if not path.startswith(("node/", "heartbeat/"))}
    cluster |= {path for path in files if path.count("/") == 1 and path.startswith("heartbeat/")}
    result.check(cluster == CLUSTER_ATTRIBUTES, f"cluster attributes: {sorted(cluster)}")
    node = {path.rsplit("/", 1)[1] for path in files if path.startswith("node/virtme-ng/")}
    result.check(node == NODE_ATTRIBUTES, f"node attributes: {sorted(node)}")
    region = {
        path.rsplit("/", 1)[1]
        for path in files
        if path.startswith("heartbeat/") and path.count("/") == 2
    }
    result.check(region == REGION_ATTRIBUTES, f"heartbeat region attributes: {sorted(region)}")


def test_o2cb_modules_and_their_dependencies(
    boots: dict[str, Boot], kernel: harness.Kernel
) -> None:
    result = boots["ours"].scenario("start")
    users = added_modules(boots["ours"], result.snap("after"))
    result.check(users == O2CB_MODULE_USERS, f"modules and users after start: {users}")
    mounted = boots["ours"].scenario("data-safety")
    added = set(added_modules(boots["ours"], mounted.snap("mounted"))) - set(O2CB_MODULE_USERS)
    mounted.check(
        {"ocfs2", "jbd2", "quota_tree"} <= added, f"a mount added the modules {sorted(added)}"
    )

