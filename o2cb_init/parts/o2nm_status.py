"""What status shows of the o2nm cluster: its state, timeouts, nodes and heartbeat.

The reporting half of parts/o2nm.py: it reads what O2nmCluster decides
(completeness, pending timeouts) and adds the facts for text and --json.
"""

from __future__ import annotations

from ..configfs import Cluster
from ..errors import O2cbError
from ..kernel import LEGACY_THRESHOLD_FILE
from ..status import StatusReport
from . import drift
from .o2nm import Lacks, O2nmCluster

LIVE_NODES = drift.LIVE_NODES
TIMEOUT_NAMES = ("dead_threshold", "idle_timeout_ms", "keepalive_delay_ms", "reconnect_delay_ms")


class O2nmStatus:
    def __init__(self, o2nm: O2nmCluster) -> None:
        self.o2nm = o2nm
        self.system = o2nm.system

    def status(self, report: StatusReport, name: str) -> None:
        target = self.o2nm.cluster(name)
        exists = target.exists()
        applied = drift.read_applied(self.system, name) if exists else None
        lacks = self.o2nm.missing(name, applied) if exists else Lacks()
        problems = lacks.words()
        online = exists and not problems
        state = "Online" if online else ("Partial" if exists else "Offline")
        report.facts["cluster"] = name
        report.facts["partial"] = bool(exists and problems)
        report.add("online", online, f'Checking O2CB cluster "{name}": {state}')
        if problems:
            report.add("missing", problems, f"  Missing: {', '.join(problems)}")
        if not exists:
            return
        if applied is not None:
            self.status_pending(report, target, name)
        report.facts["configfs"] = target.dump()
        threshold = target.heartbeat.read_int("dead_threshold")
        if threshold is None:
            legacy = self.system.read_attribute(LEGACY_THRESHOLD_FILE)
            threshold = int(legacy) if legacy and legacy.isdigit() else None
        if threshold is not None:
            report.add(
                "heartbeat_dead_threshold", threshold, f"  Heartbeat dead threshold: {threshold}"
            )
        for key, label in (
            ("idle_timeout_ms", "Network idle timeout"),
            ("keepalive_delay_ms", "Network keepalive delay"),
            ("reconnect_delay_ms", "Network reconnect delay"),
        ):
            value = target.read_int(key)
            if value is not None:
                report.add(key, value, f"  {label}: {value}")
        self.status_pending_timeouts(report, target)
        self.status_nodes(report, target)
        mode = "global" if target.heartbeat.read("mode") == "global" else "local"
        report.add("heartbeat_mode", mode, f"  Heartbeat mode: {mode.capitalize()}")
        regions = [{"uuid": uuid, "device": target.region(uuid).device}
                   for uuid in target.heartbeat_regions()]
        report.facts["heartbeat_regions"] = regions
        report.add(
            "heartbeat_active", bool(regions),
            f"Checking O2CB heartbeat: {'Active' if regions else 'Not active'}",
        )
        if mode == "global" and regions:  # local regions belong to mounted volumes
            report.lines.extend(f"  {region['uuid']} {region['device'] or ''}".rstrip()
                                for region in regions)
            self.status_live_nodes(report)

    def status_pending(self, report: StatusReport, target: Cluster, name: str) -> None:
        """What the files say now and the running cluster lacks: not a fault (exit 0)."""
        if not self.o2nm.check_timeouts:
            return  # the settings describe what runs: nothing can be pending
        try:
            layout = self.o2nm.layout(name)
        except O2cbError:
            return
        mounted = bool(self.o2nm.kernel.mounts_of_type("ocfs2"))
        found = drift.drift(self.o2nm, target, layout, mounted).differences
        report.facts["pending"] = [difference.as_data() for difference in found]
        # Timeouts have their line of their own (status_pending_timeouts).
        shown = [difference.text() for difference in found
                 if difference.subject not in TIMEOUT_NAMES]
        if shown:
            report.lines.append(f"  Pending: {'; '.join(shown)}")

    def status_nodes(self, report: StatusReport, target: Cluster) -> None:
        """The nodes in configfs, with o2hb's and o2net's view of each when debugfs
        shows them (None when it does not); the text adds a line a node then."""
        live = drift.node_numbers(self.system, drift.LIVE_NODES)
        connected = drift.node_numbers(self.system, drift.CONNECTED_NODES)
        nodes = []
        for node in target.nodes():
            number = node.read_int("num")
            facts = {
                "name": node.name,
                "number": number,
                "address": node.read("ipv4_address"),
                "port": node.read_int("ipv4_port"),
                "local": node.is_local,
                "heartbeating": None if live is None else number in live,
                "connected": None if connected is None or node.is_local
                else number in connected,
            }
            nodes.append(facts)
            if live is None and connected is None:
                continue
            words = ["this node"] if node.is_local else []
            if live is not None:
                words.append("heartbeating" if facts["heartbeating"] else "not heartbeating")
            if connected is not None and not node.is_local:
                words.append("connected" if facts["connected"] else "not connected")
            report.lines.append(f"  Node {node.name} ({number}) {facts['address']}:"
                                f"{facts['port']}: {', '.join(words)}")
        report.facts["nodes"] = nodes

    def status_live_nodes(self, report: StatusReport) -> None:
        """The nodes o2hb sees heartbeating, from debugfs, as the reference lists them."""
        text = self.system.read_attribute(LIVE_NODES)
        if text is None:
            return  # debugfs not mounted: the reference says nothing either
        live = [int(word) for word in text.split() if word.isdigit()]
        report.add("live_nodes", live, f"Nodes in O2CB cluster: {text}")

    def status_pending_timeouts(self, report: StatusReport, target: Cluster) -> None:
        """Configured timeouts the running cluster does not have yet: informational."""
        pending = self.o2nm.pending_timeouts(target)
        report.facts["pending_timeouts"] = pending
        if pending:
            changes = ", ".join(
                f"{name} {values['running']} -> {values['configured']}"
                for name, values in pending.items()
            )
            report.lines.append(f"  Configured timeouts differ (a restart applies them): {changes}")
