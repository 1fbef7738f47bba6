"""The benchmark's comparison of end states, without running anything."""

from __future__ import annotations

from typing import Any

from benchmarks.harness import differences, full_unload

CONFIGFS_MOUNT = ("configfs", "/sys/kernel/config", "configfs")


def state(modules: dict[str, int], configfs: dict[str, Any], mounted: bool) -> dict[str, Any]:
    return {
        "modules": modules,
        "mounts": [CONFIGFS_MOUNT] if mounted else [],
        "filesystems": ["configfs"] if "configfs" in modules else [],
        "sys/fs": {"o2cb/": None, "o2cb/interface_revision": "5"}
        if "ocfs2_nodemanager" in modules else {},
        "configfs": configfs,
        "config": {},
    }


CLEAN = state({}, {}, mounted=False)


def test_the_references_documented_leftovers_are_not_a_difference() -> None:
    reference = state({"ocfs2_nodemanager": 0, "configfs": 2}, {"cluster/": None}, mounted=True)
    assert differences(CLEAN, full_unload(reference, CLEAN)) == []


def test_a_cluster_the_reference_left_online_still_shows() -> None:
    reference = state(
        {"ocfs2_nodemanager": 1, "configfs": 2},
        {"cluster/": None, "cluster/ocfs2/": None},
        mounted=True,
    )
    assert differences(CLEAN, full_unload(reference, CLEAN)) == [
        "configfs[cluster/ocfs2/]: ours='<absent>' reference=None"
    ]


def test_leftovers_of_ours_are_a_difference() -> None:
    ours = state({"configfs": 1}, {}, mounted=True)
    assert differences(ours, full_unload(CLEAN, ours)) != []
