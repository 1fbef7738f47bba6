"""Our package on a real Debian 12 boot: systemd as PID 1, Debian's kernel,
ocfs2-tools, the documented fstab line for an OCFS2 volume.  See conftest.py
for which boot runs which scenario."""

from __future__ import annotations

import re

import pytest

from bootbed.machine import Boot

pytestmark = pytest.mark.bootbed

OCFS2_MODULES = ("ocfs2", "ocfs2_stack_o2cb", "ocfs2_dlmfs", "ocfs2_nodemanager", "ocfs2_dlm")


def mounts(boot: Boot, name: str) -> dict[str, str]:
    """mount point -> file system type, from a recorded /proc/mounts."""
    table = {}
    for line in boot.text(name + ".mounts").splitlines():
        fields = line.split()
        if len(fields) >= 3:
            table[fields[1]] = fields[2]
    return table


def modules(boot: Boot, name: str) -> set[str]:
    return {line.split()[0] for line in boot.text(name + ".modules").splitlines() if line}


def explain(boot: Boot, *names: str) -> str:
    parts = [f"--- {n} (rc {boot.rc(n)}) ---\n{boot.out(n)}" for n in names]
    parts.append("--- console (tail) ---\n" + boot.console[-3000:])
    return "\n".join(parts)


def cycles(journal: str) -> list[str]:
    return [line for line in journal.splitlines() if re.search(r"ordering cycle", line, re.I)]


def assert_boot_mounted_the_volume(boot: Boot, step: str) -> None:
    active = boot.out(step + ".o2cb").strip()
    assert active == "active", explain(boot, step + ".o2cb", step + ".unit")
    assert boot.out(step + ".srv").strip() == "active", explain(boot, step + ".srv")
    assert mounts(boot, step).get("/srv") == "ocfs2", boot.text(step + ".mounts")
    assert {"ocfs2", "ocfs2_stack_o2cb"} <= modules(boot, step), boot.text(step + ".modules")
    assert boot.out(step + ".remotefs").strip() == "active", explain(boot, step + ".remotefs")
    assert cycles(boot.out(step + ".journal")) == []
    assert "cycle" not in boot.out(step + ".verify").lower(), explain(boot, step + ".verify")


# -- 1: boot with the fstab volume ----------------------------------------------


def test_boot_mounts_the_fstab_volume_through_our_unit(bed: dict[str, Boot]) -> None:
    boot = bed["ours"]
    assert boot.phase == "ours", boot.console[-3000:]
    assert "FragmentPath=/lib/systemd/system/o2cb.service" in boot.out("s1.unit")
    assert "SourcePath=\n" in boot.out("s1.unit") or "SourcePath=" + "\n" in boot.out("s1.unit")
    assert_boot_mounted_the_volume(boot, "s1")
    assert boot.rc("s1.write") == 0, explain(boot, "s1.write")


# -- 2: stop under a manual mount -----------------------------------------------


def test_stop_under_a_manual_mount_fails_and_the_volume_survives(bed: dict[str, Boot]) -> None:
    boot = bed["ours"]
    assert boot.rc("s2.mount") == 0, explain(boot, "s2.umountsrv", "s2.mount")
    # systemctl's stop job completes either way (exit 0); the failed ExecStop
    # shows in the unit's state and result.
    assert boot.out("s2.o2cb").strip() == "failed", explain(boot, "s2.o2cb", "s2.journal")
    assert boot.out("s2.result").strip() == "Result=exit-code", explain(boot, "s2.result")
    assert mounts(boot, "s2").get("/mnt/manual") == "ocfs2", boot.text("s2.mounts")
    assert boot.out("s2.read") == "written at boot 1\n", explain(boot, "s2.read")
    assert {"ocfs2", "ocfs2_stack_o2cb"} <= modules(boot, "s2")
    journal = boot.out("s2.journal")
    assert "Unable to stop cluster as heartbeat region still active" in journal, journal


# -- 3: poweroff unmounts before the stack stops ---------------------------------


def test_poweroff_unmounts_the_volume_before_a_clean_stop(bed: dict[str, Boot]) -> None:
    first = bed["ours"]
    assert first.rc("s3.mountsrv") == 0, explain(first, "s3.umount", "s3.start", "s3.mountsrv")
    assert mounts(first, "s3").get("/srv") == "ocfs2", first.text("s3.mounts")
    journal = bed["broken"].out("s3.journal").splitlines()
    shutdown = [i for i, line in enumerate(journal) if "bed-driver: powering off" in line]
    unmounted = [i for i, line in enumerate(journal) if "Unmounted srv.mount" in line]
    stopping = [i for i, line in enumerate(journal) if "Stopping O2CB cluster ocfs2: OK" in line]
    assert shutdown and unmounted and stopping, "\n".join(journal[-80:])
    assert shutdown[-1] < unmounted[-1], "the volume was unmounted before the poweroff"
    assert unmounted[-1] < stopping[-1], "\n".join(journal[unmounted[-1] - 5:])
    after = journal[unmounted[-1]:]
    assert not [line for line in after if re.search(r"o2cb\.service: .*(Failed|status=)", line)]
    assert any("o2cb.service: Deactivated successfully" in line for line in after)
    assert any("Stopped o2cb.service" in line for line in after)


# -- 4: a broken /etc/default/o2cb --------------------------------------------------


def test_broken_config_fails_the_unit_and_loads_nothing(bed: dict[str, Boot]) -> None:
    boot = bed["broken"]
    assert boot.phase == "broken", boot.console[-3000:]
    assert boot.out("s4.o2cb").strip() == "failed", explain(boot, "s4.o2cb", "s4.status")
    journal = boot.out("s4.unitjournal")
    reasons = [line for line in journal.splitlines() if "/etc/default/o2cb" in line]
    assert len(reasons) == 1 and "O2CB_HEARTBEAT_THRESHOLD" in reasons[0], journal
    assert "Traceback" not in journal
    assert not modules(boot, "s4") & set(OCFS2_MODULES), boot.text("s4.modules")
    assert "ocfs2" not in mounts(boot, "s4").values()
    assert boot.out("s4.srv").strip() != "active"


# -- 5: the diverted script, and dpkg -r --------------------------------------------


def test_status_through_the_diverted_script(bed: dict[str, Boot]) -> None:
    boot = bed["ours"]
    assert "diversion of /etc/init.d/o2cb to /etc/init.d/o2cb.ocfs2-tools by o2cb-init" in (
        boot.out("s5.divert")
    )
    for name in ("s5.service", "s5.initd"):
        assert boot.rc(name) == 0, explain(boot, name)
        assert "o2cb.service - OCFS2 cluster stack (O2CB)" in boot.out(name), explain(boot, name)
        assert "Active: active (exited)" in boot.out(name), explain(boot, name)
    assert boot.rc("s5.command") == 0, explain(boot, "s5.command")
    assert 'Checking O2CB cluster "ocfs2": Online' in boot.out("s5.command")


def test_removing_the_package_brings_back_ocfs2_tools_script(bed: dict[str, Boot]) -> None:
    boot = bed["broken"]
    assert boot.rc("s5.remove") == 0, explain(boot, "s5.remove")
    assert boot.out("s5.divert_after").strip() == "", explain(boot, "s5.divert_after")
    md5 = boot.out("s5.md5").split()[0]
    shipped = dict(
        (fields[0], fields[1])
        for fields in (line.split() for line in boot.out("s5.conffiles").splitlines())
        if len(fields) >= 2
    )
    assert shipped.get("/etc/init.d/o2cb") == md5, explain(boot, "s5.md5", "s5.conffiles")


# -- 6: the reference on the same machine -------------------------------------------


def test_reference_script_boots_the_same_machine(bed: dict[str, Boot]) -> None:
    boot = bed["reference"]
    assert boot.phase == "reference", boot.console[-3000:]
    assert "SourcePath=/etc/init.d/o2cb" in boot.out("s6.unit"), explain(boot, "s6.unit")
    assert_boot_mounted_the_volume(boot, "s6")


# -- 7: systemctl reload ------------------------------------------------------------


def test_systemctl_reload_applies_an_added_node(bed: dict[str, Boot]) -> None:
    boot = bed["ours"]
    assert boot.rc("s7.reload") == 0, explain(boot, "s7.reload", "s7.journal")
    assert boot.out("s7.nodes").split() == ["bednode", "peer", "third"], explain(boot, "s7.nodes")
    assert boot.out("s7.third").split() == ["2", "10.0.0.3"], explain(boot, "s7.third")
    assert boot.out("s7.o2cb").strip() == "active", explain(boot, "s7.o2cb")
    journal = boot.out("s7.journal").splitlines()
    assert 'Adding nodes to O2CB cluster "ocfs2": OK' in journal, "\n".join(journal)
    assert any(line.startswith("Reloaded o2cb.service") for line in journal), "\n".join(journal)
    assert boot.rc("s7.status") == 0, explain(boot, "s7.status")
    assert "Pending" not in boot.out("s7.status"), explain(boot, "s7.status")
    # The volume under the reload stayed mounted (scenario 2 unmounts it next).
    assert boot.rc("s2.umountsrv") == 0, explain(boot, "s2.umountsrv")


def test_systemctl_reload_refuses_a_timeout_change_and_the_unit_stays_active(
        bed: dict[str, Boot]) -> None:
    boot = bed["ours"]
    # systemd reports the failed ExecReload to systemctl (exit 1) and keeps
    # the unit as it was: active, its Result untouched.
    assert boot.rc("s7.refused") == 1, explain(boot, "s7.refused", "s7.refused_journal")
    assert boot.out("s7.refused_nodes").split() == ["bednode", "peer", "third"], (
        explain(boot, "s7.refused_nodes"))
    assert boot.out("s7.refused_timeout").strip() == "30000", explain(boot, "s7.refused_timeout")
    unit = boot.out("s7.refused_unit").split()
    assert sorted(unit) == ["ActiveState=active", "Result=success", "SubState=exited"], unit
    journal = boot.out("s7.refused_journal").splitlines()
    reasons = [line for line in journal if "idle_timeout_ms 30000 -> 40000: restart needed" in line]
    assert len(reasons) == 1, "\n".join(journal)
    assert any(line.startswith("Reload failed for o2cb.service") for line in journal), (
        "\n".join(journal))
    assert "Traceback" not in boot.out("s7.refused_journal")
    # The files put back, a reload removes the idle node again.
    assert boot.rc("s7.restore") == 0, explain(boot, "s7.restore", "s7.restore_status")
    assert boot.out("s7.restore_nodes").split() == ["bednode", "peer"]
    assert boot.rc("s7.restore_status") == 0, explain(boot, "s7.restore_status")
    assert "Pending" not in boot.out("s7.restore_status")
