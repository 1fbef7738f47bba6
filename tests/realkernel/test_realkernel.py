"""Scenarios on Debian's real kernel, for our ``o2cb`` and for the reference script.

Every test reads the JSON the guest runner wrote (see ``guest.py``) and
asserts on kernel state and exit codes.  Tests parametrised with ``impl``
run the same assertions on the reference script too: where the reference
behaves differently on purpose of ours, the expectation says so by name.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from . import guest
from .harness import Boot, ScenarioResult

pytestmark = pytest.mark.realkernel

O2CB_MODULES = {
    "configfs",
    "ocfs2_stackglue",
    "ocfs2_nodemanager",
    "ocfs2_dlm",
    "ocfs2_stack_o2cb",
    "ocfs2_dlmfs",
}
CONFIGFS_MOUNT = ["configfs", "/sys/kernel/config", "configfs"]
DLMFS_MOUNT = ["ocfs2_dlmfs", "/dlm", "ocfs2_dlmfs"]
# What the reference script leaves behind after stop/unload, and we do not.
REFERENCE_LEFTOVER_MODULES = {"ocfs2_nodemanager", "configfs"}

EXPECTED_CLUSTER = {
    "cluster/": None,
    "cluster/ocfs2/": None,
    "cluster/ocfs2/fence_method": "reset",
    "cluster/ocfs2/heartbeat/": None,
    "cluster/ocfs2/heartbeat/dead_threshold": guest.TIMEOUTS["O2CB_HEARTBEAT_THRESHOLD"],
    "cluster/ocfs2/heartbeat/mode": "local",
    "cluster/ocfs2/idle_timeout_ms": guest.TIMEOUTS["O2CB_IDLE_TIMEOUT_MS"],
    "cluster/ocfs2/keepalive_delay_ms": guest.TIMEOUTS["O2CB_KEEPALIVE_DELAY_MS"],
    "cluster/ocfs2/reconnect_delay_ms": guest.TIMEOUTS["O2CB_RECONNECT_DELAY_MS"],
    "cluster/ocfs2/node/": None,
    "cluster/ocfs2/node/virtme-ng/": None,
    "cluster/ocfs2/node/virtme-ng/ipv4_address": "127.0.0.1",
    "cluster/ocfs2/node/virtme-ng/ipv4_port": "7777",
    "cluster/ocfs2/node/virtme-ng/num": "0",
    "cluster/ocfs2/node/virtme-ng/local": "1",
    "cluster/ocfs2/node/peer/": None,
    "cluster/ocfs2/node/peer/ipv4_address": "127.0.0.2",
    "cluster/ocfs2/node/peer/ipv4_port": "7777",
    "cluster/ocfs2/node/peer/num": "1",
    "cluster/ocfs2/node/peer/local": "0",
}
O2NET_LISTENER = "127.0.0.1:7777"  # /proc/net/tcp: 0100007F:1E61, state 0A


def state(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The comparable part of a snapshot (module load order and refcounts left out)."""
    return {
        "modules": sorted(snapshot["modules"]),
        "mounts": snapshot["mounts"],
        "filesystems": sorted(snapshot["filesystems"]),
        "sys_fs_ocfs2": snapshot["sys_fs_ocfs2"],
        "configfs": snapshot["configfs"],
        "listeners": snapshot["listeners"],
        "daemons": snapshot["daemons"],
    }


def differences(left: dict[str, Any], right: dict[str, Any], names: tuple[str, str]) -> str:
    """A readable account of how two states differ, empty when they do not."""
    lines = []
    for key in left:
        a, b = left[key], right[key]
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for path in sorted(set(a) | set(b)):
                if a.get(path, "<absent>") != b.get(path, "<absent>"):
                    lines.append(
                        f"  {key}[{path}]: {names[0]}={a.get(path, '<absent>')!r} "
                        f"{names[1]}={b.get(path, '<absent>')!r}"
                    )
        elif isinstance(a, list) and isinstance(b, list):
            only_a = [item for item in a if item not in b]
            only_b = [item for item in b if item not in a]
            lines.append(f"  {key}: only {names[0]}: {only_a}; only {names[1]}: {only_b}")
            if not only_a and not only_b:
                lines.append(f"    (same items, other order: {a} vs {b})")
        else:
            lines.append(f"  {key}: {names[0]}={a!r} {names[1]}={b!r}")
    return "\n".join(lines)


def cluster_part(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {
        path: value for path, value in snapshot["configfs"].items() if path.startswith("cluster/")
    }


def nodes_of(snapshot: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """Each o2nm node's attributes, by node name."""
    prefix = f"cluster/{guest.CLUSTER}/node/"
    nodes: dict[str, dict[str, str | None]] = {}
    for path, value in snapshot["configfs"].items():
        if path.startswith(prefix) and path.count("/") == 4:
            name, attribute = path[len(prefix):].split("/")
            nodes.setdefault(name, {})[attribute] = value
    return nodes


def regions_of(snapshot: dict[str, Any]) -> dict[str, str | None]:
    """Each heartbeat region's device, by region name."""
    return {
        path.split("/")[3]: value
        for path, value in snapshot["configfs"].items()
        if path.startswith(f"cluster/{guest.CLUSTER}/heartbeat/") and path.endswith("/dev")
    }


def ocfs2_modules(snapshot: dict[str, Any]) -> set[str]:
    return {name for name in snapshot["modules"] if name in O2CB_MODULES or name == "ocfs2"}


def expect_rc(result: ScenarioResult, label: str, expected: int) -> dict[str, Any]:
    step = result.step(label)
    result.check(
        step["rc"] == expected,
        f"`{step['command']}` exited {step['rc']}, expected {expected}\n"
        f"stdout: {step['stdout']!r}\nstderr: {step['stderr']!r}",
    )
    return step


# -- 1. start on a clean kernel ------------------------------------------------


def test_start_brings_the_cluster_online(boots: dict[str, Boot], impl: str) -> None:
    result = boots[impl].scenario("start")
    before, after = result.snap("before"), result.snap("after")
    result.check(not ocfs2_modules(before), f"kernel not clean before start: {before['modules']}")
    expect_rc(result, "start", 0)
    missing = O2CB_MODULES - set(after["modules"])
    result.check(not missing, f"modules missing after start: {sorted(missing)}")
    result.check(CONFIGFS_MOUNT in after["mounts"], f"configfs not mounted: {after['mounts']}")
    result.check(DLMFS_MOUNT in after["mounts"], f"ocfs2_dlmfs not at /dlm: {after['mounts']}")
    tree = cluster_part(after)
    result.check(
        tree == EXPECTED_CLUSTER,
        "configfs tree differs from cluster.conf and the configured timeouts:\n"
        + differences({"configfs": tree}, {"configfs": EXPECTED_CLUSTER}, ("kernel", "expected")),
    )
    sysfs = after["sys_fs_ocfs2"] or {}
    result.check(sysfs.get("cluster_stack") == "o2cb", f"/sys/fs/ocfs2: {sysfs}")
    result.check("o2cb" in (sysfs.get("loaded_cluster_plugins") or "").split(), f"{sysfs}")
    result.check(
        O2NET_LISTENER in after["listeners"],
        f"o2net is not listening on {O2NET_LISTENER}: {after['listeners']}",
    )


# -- 2. status and online-status -----------------------------------------------


def test_status_exit_codes(boots: dict[str, Boot], impl: str) -> None:
    result = boots[impl].scenario("status")
    expect_rc(result, "start", 0)
    expect_rc(result, "status online", 0)
    online = expect_rc(result, "online-status online", 0)
    result.check(online["stdout"].strip() == "online", f"online-status said {online['stdout']!r}")
    expect_rc(result, "stop", 0)
    # Deliberate: LSB says 3 when the service is not running; the reference exits 0.
    expect_rc(result, "status offline", 3 if impl == "ours" else 0)
    offline = expect_rc(result, "online-status offline", 1)
    result.check(
        offline["stdout"].strip() == "offline", f"online-status said {offline['stdout']!r}"
    )


def test_status_json_parses(boots: dict[str, Boot]) -> None:
    result = boots["ours"].scenario("status")
    for label, rc in (("status --json online", 0), ("status --json offline", 3)):
        step = expect_rc(result, label, rc)
        try:
            json.loads(step["stdout"])
        except ValueError as error:
            raise AssertionError(result.explain(f"{label}: not JSON ({error})")) from None


# -- 3. data safety ------------------------------------------------------------


def test_no_verb_pulls_the_cluster_from_a_mounted_volume(boots: dict[str, Boot], impl: str) -> None:
    result = boots[impl].scenario("data-safety")
    for label in ("start", "losetup", "mkfs", "mount"):
        expect_rc(result, label, 0)
    mounted = result.snap("mounted")
    device = result.notes["device"].rsplit("/", 1)[-1]
    regions = regions_of(mounted)
    result.check(
        list(regions.values()) == [device],
        f"expected one heartbeat region on {device} while mounted, got {regions}",
    )
    result.check(
        any(row[2] == "ocfs2" for row in mounted["mounts"]), f"no ocfs2 mount: {mounted['mounts']}"
    )
    for verb in ("stop", "offline", "force-offline", "unload"):
        expect_rc(result, f"{verb} while mounted", 1)
        drift = differences(
            state(mounted), state(result.snap(f"after {verb}")), ("before", "after")
        )
        result.check(not drift, f"refused `{verb}` still changed the kernel:\n{drift}")
    status = expect_rc(result, "online-status while mounted", 0)
    result.check(status["stdout"].strip() == "online", f"online-status: {status['stdout']!r}")
    notes = result.notes
    result.check(
        notes["sha256_written"] == notes["sha256_mounted"] == notes["sha256_after"],
        f"file checksum changed: {notes}",
    )
    expect_rc(result, "umount", 0)
    expect_rc(result, "stop after umount", 0)
    stopped = result.snap("stopped")
    result.check(
        not cluster_part(stopped) or cluster_part(stopped) == {"cluster/": None},
        f"cluster still registered after stop: {cluster_part(stopped)}",
    )
    left = ocfs2_modules(stopped)
    allowed = set() if impl == "ours" else REFERENCE_LEFTOVER_MODULES
    result.check(left == allowed, f"modules left after stop: {sorted(left)}, expected {allowed}")


# -- 3b. reload in local mode -------------------------------------------------


def test_reload_in_local_mode_under_a_mounted_volume(boots: dict[str, Boot]) -> None:
    result = boots["ours"].scenario("local-reload")
    for label in ("start", "losetup", "mkfs", "mount"):
        expect_rc(result, label, 0)
    mounted = result.snap("mounted")
    result.check(len(regions_of(mounted)) == 1, f"no region while mounted: {mounted['configfs']}")
    pending = expect_rc(result, "status pending", 0)
    result.check("Pending:" in pending["stdout"], f"no Pending line: {pending['stdout']!r}")
    expect_rc(result, "reload dry-run", 0)
    drift = differences(state(mounted), state(result.snap("after dry run")), ("before", "after"))
    result.check(not drift, f"reload --dry-run changed the kernel:\n{drift}")

    expect_rc(result, "reload add", 0)
    added = result.snap("added")
    name, address, number = guest.THIRD_NODE
    third = nodes_of(added).get(name, {})
    result.check(
        (third.get("ipv4_address"), third.get("num"), third.get("local"))
        == (address, str(number), "0"),
        f"node {name} after reload: {third}",
    )
    for snapshot in ("added", "removed", "refused"):
        after = result.snap(snapshot)
        result.check(
            regions_of(after) == regions_of(mounted) and mounted["mounts"] == after["mounts"],
            f"reload touched the mounted volume ({snapshot}): "
            f"{regions_of(after)} {after['mounts']}",
        )

    expect_rc(result, "reload removal", 0)
    removed = nodes_of(result.snap("removed"))
    result.check(
        sorted(removed) == sorted([guest.HOSTNAME_NODE, name]),
        f"nodes after removing {guest.PEER_NODE}: {sorted(removed)}",
    )

    refused = expect_rc(result, "reload timeout", 1)
    result.check("restart needed" in refused["stderr"], f"refusal: {refused['stderr']!r}")
    drift = differences(
        state(result.snap("removed")), state(result.snap("refused")), ("before", "after")
    )
    result.check(not drift, f"the refused reload changed the kernel:\n{drift}")
    expect_rc(result, "status after reload", 0)

    notes = result.notes
    result.check(
        notes["sha256_read_after_reload"]
        == [notes["sha256_before_reload"], notes["sha256_written_after_reload"]],
        f"data across reload: {notes}",
    )
    expect_rc(result, "umount", 0)
    expect_rc(result, "stop after umount", 0)
    result.check(not ocfs2_modules(result.snap("stopped")), "ocfs2 modules left after stop")


# -- 4. clean shutdown ---------------------------------------------------------


def test_stop_restores_the_kernel_as_it_was(boots: dict[str, Boot], impl: str) -> None:
    result = boots[impl].scenario("clean-shutdown")
    expect_rc(result, "start", 0)
    expect_rc(result, "stop", 0)
    before, after = result.snap("before"), result.snap("after")
    if impl == "ours":
        for key in ("modules", "mounts"):
            result.check(
                sorted(before[key]) == sorted(after[key]),
                "start + stop did not restore the kernel:\n"
                + differences(state(before), state(after), ("before", "after")),
            )
        result.check(after["configfs_mountpoint"] is None, "configfs still mounted")
    else:
        # The reference keeps ocfs2_nodemanager and configfs (mounted) after stop.
        extra = set(after["modules"]) - set(before["modules"])
        result.check(extra == REFERENCE_LEFTOVER_MODULES, f"reference left {sorted(extra)}")
        new_mounts = [row for row in after["mounts"] if row not in before["mounts"]]
        result.check(new_mounts == [CONFIGFS_MOUNT], f"reference left mounts {new_mounts}")


# -- 5. idempotence ------------------------------------------------------------


def test_start_and_stop_twice(boots: dict[str, Boot], impl: str) -> None:
    result = boots[impl].scenario("idempotence")
    for label in ("start 1", "start 2", "stop 1", "stop 2"):
        expect_rc(result, label, 0)
    for first, second in (("start 1", "start 2"), ("stop 1", "stop 2")):
        drift = differences(state(result.snap(first)), state(result.snap(second)), (first, second))
        result.check(not drift, f"the second `{second.split()[0]}` changed the kernel:\n{drift}")
    result.check(
        cluster_part(result.snap("start 2")) == EXPECTED_CLUSTER, "cluster wrong after 2nd start"
    )


# -- 6. parity with the reference ----------------------------------------------

# Every difference from the reference the tests accept, by name.  Anything
# else that differs in exit code or kernel end state fails the parity test.
UNLOAD_EVERYTHING = "unload-everything"
LSB_STATUS = "lsb-status-3"
ALLOWED: dict[str, set[str]] = {
    "start": set(),
    "start-no-debugfs": set(),
    "start-stack-was-pcmk": set(),
    "status-online": set(),
    "status-offline": {LSB_STATUS},
    "online": set(),
    "offline": set(),
    "load": set(),
    "unload-online": {UNLOAD_EVERYTHING},
    "unload-loaded": {UNLOAD_EVERYTHING},
    "stop": {UNLOAD_EVERYTHING},
    "stop-clean": set(),
}


def without_reference_leftovers(snapshot: dict[str, Any], result: ScenarioResult) -> dict[str, Any]:
    """The reference's state minus what it leaves behind that we unload (UNLOAD_EVERYTHING)."""
    result.check(
        set(snapshot["modules"]) >= REFERENCE_LEFTOVER_MODULES
        and CONFIGFS_MOUNT in snapshot["mounts"],
        f"allowed difference {UNLOAD_EVERYTHING!r} no longer observed in the reference: "
        f"{snapshot['modules']} {snapshot['mounts']}",
    )
    trimmed = dict(snapshot)
    trimmed["modules"] = [m for m in snapshot["modules"] if m not in REFERENCE_LEFTOVER_MODULES]
    trimmed["mounts"] = [row for row in snapshot["mounts"] if row != CONFIGFS_MOUNT]
    trimmed["filesystems"] = [name for name in snapshot["filesystems"] if name != "configfs"]
    trimmed["configfs"] = {}
    return trimmed


def test_parity_cases_cover_the_verbs() -> None:
    assert set(ALLOWED) == set(guest.PARITY_CASES)
    verbs = {case[1][0] for case in guest.PARITY_CASES.values()}
    assert verbs == {"start", "status", "online", "offline", "load", "unload", "stop"}


@pytest.mark.parametrize("case", list(guest.PARITY_CASES))
def test_parity_with_the_reference(boots: dict[str, Boot], case: str) -> None:
    ours = boots["ours"].scenario(f"parity:{case}")
    ref = boots["reference"].scenario(f"parity:{case}")

    def fail(message: str) -> str:
        return (
            f"parity {case}: {message}\n"
            f"--- ours ---\n{ours.transcript()}\n--- reference ---\n{ref.transcript()}\n"
            + ours.explain("console")
        )

    for step in ref.steps + ours.steps:
        assert step["rc"] == 0 or step["label"] == "verb", fail(f"set-up failed: {step}")
    start_drift = differences(
        state(ref.snap("before")), state(ours.snap("before")), ("ref", "ours")
    )
    assert not start_drift, fail(f"starting states differ:\n{start_drift}")

    allowed = ALLOWED[case]
    ours_rc, ref_rc = ours.step("verb")["rc"], ref.step("verb")["rc"]
    if LSB_STATUS in allowed:
        assert (ours_rc, ref_rc) == (3, 0), fail(
            f"{LSB_STATUS}: ours {ours_rc}, reference {ref_rc}"
        )
    else:
        assert ours_rc == ref_rc, fail(f"exit code: ours {ours_rc}, reference {ref_rc}")

    ref_after = ref.snap("after")
    if UNLOAD_EVERYTHING in allowed:
        ref_after = without_reference_leftovers(ref_after, ref)
    drift = differences(state(ref_after), state(ours.snap("after")), ("ref", "ours"))
    assert not drift, fail(f"kernel end states differ (allowed: {sorted(allowed)}):\n{drift}")


def test_every_scenario_started_from_a_clean_kernel(boots: dict[str, Boot], impl: str) -> None:
    """The bed itself: the reset between scenarios undid everything, so none inherits state."""
    boot = boots[impl]
    assert not boot.problems, f"[{impl}] {boot.problems}\n{boot.console[-6000:]}"
    for name in boot.results["scenarios"]:
        result = boot.scenario(name)
        result.check(not result.record["reset_before"], "the kernel could not be reset before it")
        result.check(not result.record["reset_after"], "the kernel could not be reset after it")
