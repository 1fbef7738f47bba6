"""Two booted Debian 12 nodes on one iSCSI LUN through dm-multipath, global heartbeat.

See sharedstorage.py for the bed and guest/storage-driver for what each
node does.  Both nodes boot once and power off; the journals are read from
their disk images afterwards.
"""

from __future__ import annotations

import json
import re

import pytest

from bootbed.sharedstorage import DEAD_SECONDS, MAP, Node

pytestmark = pytest.mark.bootbed

FENCED = re.compile(r"o2hb.*(write timeout|fenc)|o2quo.*(fenc|self)|ocfs2 is very sorry", re.I)


def explain(node: Node, *names: str) -> str:
    parts = [f"--- {node.role}: {n} (rc {node.rc(n)}) ---\n{node.out(n)}" for n in names]
    parts.append(f"--- {node.role}: error ---\n{node.files.get('error.out', '')}")
    parts.append(f"--- {node.role}: console (tail) ---\n" + node.console[-3000:])
    return "\n".join(parts)


def lines(node: Node) -> list[str]:
    return node.journal.splitlines()


def first(journal: list[str], pattern: str) -> int | None:
    found = [i for i, line in enumerate(journal) if re.search(pattern, line)]
    return found[0] if found else None


def last(journal: list[str], pattern: str) -> int | None:
    found = [i for i, line in enumerate(journal) if re.search(pattern, line)]
    return found[-1] if found else None


def assert_mounted(node: Node, step: str) -> None:
    assert node.out(f"{step}.o2cb").strip() == "active", explain(node, f"{step}.o2cb")
    assert node.out(f"{step}.srv").strip() == "active", explain(node, f"{step}.srv")
    mounts = {fields[1]: (fields[0], fields[2]) for fields in
              (line.split() for line in node.out(f"{step}.mounts").splitlines()) if len(fields) > 2}
    assert mounts.get("/srv") == (MAP, "ocfs2"), node.out(f"{step}.mounts")


def test_both_nodes_boot_with_the_volume_on_the_map_mounted(
    shared_storage: dict[str, Node],
) -> None:
    for node in shared_storage.values():
        assert "error.out" not in node.files, explain(node)
        assert_mounted(node, f"{node.role}1")
        status = json.loads(node.out(f"{node.role}1.status"))
        regions = status["heartbeat_regions"]
        assert [region["device"] for region in regions] == [MAP], node.out(f"{node.role}1.status")
        sessions = node.out(f"{node.role}1.sessions")
        assert len(re.findall(r"Current Portal: 10\.0\.2\.2:", sessions)) == 2, sessions
        paths = node.out(f"{node.role}1.multipath")
        assert len(re.findall(r"active ready running", paths)) == 2, paths


def test_a_file_written_on_a_is_read_on_b(shared_storage: dict[str, Node]) -> None:
    a, b = shared_storage["a"], shared_storage["b"]
    assert a.rc("a1.write") == 0, explain(a, "a1.write")
    assert b.out("b1.read") == "written on A\n", explain(b, "b1.read")


def test_o2cb_starts_after_the_iscsi_login(shared_storage: dict[str, Node]) -> None:
    for node in shared_storage.values():
        journal = lines(node)
        logins = [i for i, line in enumerate(journal)
                  if re.search(r"Login to \[iface: default, target: .*\] successful", line)]
        started = first(journal, r"Starting o2cb\.service")
        region = first(journal, r'Starting global heartbeat for cluster "ocfs2": OK')
        assert len(logins) == 2 and started is not None and region is not None, node.journal
        assert logins[-1] < started < region, "\n".join(journal[logins[0]:region + 1])


def test_poweroff_unmounts_then_stops_o2cb_then_logs_out(shared_storage: dict[str, Node]) -> None:
    for node in shared_storage.values():
        journal = lines(node)
        unmounted = last(journal, r"Unmounted srv\.mount")
        stopped = last(journal, r'Stopping global heartbeat on cluster "ocfs2": OK')
        unit = last(journal, r"Stopped o2cb\.service")
        logout = first(journal, r"Logout of \[.*\] successful")
        assert (unmounted is not None and stopped is not None and unit is not None
                and logout is not None), "\n".join(journal[-150:])
        assert unmounted < stopped < unit < logout, "\n".join(journal[unmounted - 3:logout + 3])


def test_one_portal_taken_away_neither_node_is_fenced(shared_storage: dict[str, Node]) -> None:
    a, b = shared_storage["a"], shared_storage["b"]
    during = a.out("a2.multipath-during")
    assert re.search(r"failed|faulty", during), explain(a, "a2.multipath-during")
    assert int(a.out("a2.seconds")) > DEAD_SECONDS, a.out("a2.seconds")
    assert_mounted(a, "a2")
    assert a.out("a2.read") == "written on A\n", explain(a, "a2.read")
    assert a.rc("a2.write") == 0, explain(a, "a2.write")
    assert_mounted(b, "b2")
    assert b.out("b2.read") == "written on A after the portal went\n", explain(b, "b2.read")
    for node, step in ((a, "a2"), (b, "b2")):
        assert not FENCED.search(node.out(f"{step}.dmesg")), node.out(f"{step}.dmesg")
        assert not FENCED.search(node.journal), node.journal


def test_a_keeps_its_mount_when_b_powers_off(shared_storage: dict[str, Node]) -> None:
    a, b = shared_storage["a"], shared_storage["b"]
    assert b.exit_code == 0 and a.exit_code == 0, (b.exit_code, a.exit_code)
    assert "recorded; powering off" in b.console, b.console[-3000:]
    assert_mounted(a, "a3")
    assert a.out("a3.read") == "written on A after the portal went\n", explain(a, "a3.read")
    assert a.out("a3.write") == "written on A alone\n", explain(a, "a3.write")
    assert not FENCED.search(a.out("a3.dmesg")), a.out("a3.dmesg")
