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


def test_the_targets_are_printed_from_the_medians_of_the_run() -> None:
    from benchmarks.harness import CASES, FLOOR, OURS, REFERENCE, CaseResult, Run, target_lines

    def runs(*ms_pairs: tuple[float, float]) -> list[Run]:
        return [Run(wall / 1000, cpu / 1000, 1024, [0], "", "") for wall, cpu in ms_pairs]

    by_name = {case.name: case for case in CASES}
    timed = {  # case: ours, reference, floor as (wall, cpu) ms
        "status offline": ((47, 45), (20, 18), (40, 38)),
        "start+stop": ((120, 100), (100, 80), (40, 38)),
        "online+offline 2 nodes": ((110, 100), (60, 50), (40, 38)),
        "online+offline 255 nodes": ((130, 110), (90, 70), (40, 38)),
    }
    results = [CaseResult(by_name[name], {OURS: runs(ours), REFERENCE: runs(ref),
                                          FLOOR: runs(floor)})
               for name, (ours, ref, floor) in timed.items()]
    assert target_lines(results) == [
        "target status offline: ours - F <= +5 ms: wall +7.0 ms, cpu +7.0 ms",
        "target start+stop: ours/ref <= 1.0: wall 1.20, cpu 1.25",
        "target 255 nodes: ours - 2F <= +20 ms: wall +50.0 ms, cpu +34.0 ms",
        "target growth 2 -> 255 nodes: ours <= ref: ours wall +20.0 ms, cpu +10.0 ms;"
        " ref wall +30.0 ms, cpu +20.0 ms",
        "target peak RSS: no higher than before (compare the rss column)",
    ]
    untimed = CaseResult(by_name["status online"], problems=["differ"])
    assert target_lines([untimed]) == []
