"""The simulated machine's corosync: its cluster name, quorum and membership.

State in ROOT/.simkernel/corosync.json (absent: corosync does not run).
The fakes in cluster_bin/ answer as corosync's tools do (doc/pcmk.md has
the real outputs): ``corosync-quorumtool -s`` exits 0 quorate, 2 not
quorate, 1 not running; ``-l`` lists the members; ``corosync-cmapctl -g
totem.cluster_name`` prints ``totem.cluster_name (str) = NAME``.

``quorate_at``: the wall-clock time quorum forms (0: quorate from the
start; None: never), so that a start's wait for quorum can be tested.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

STATE = ".simkernel/corosync.json"
NOT_RUNNING = "Cannot initialize CMAP service"
CMAP_DOWN = "Failed to initialize the cmap API. Error CS_ERR_LIBRARY"


def read(root: Path | str) -> dict[str, Any] | None:
    path = Path(root) / STATE
    if not path.exists():
        return None
    state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return state


def write(root: Path | str, state: dict[str, Any] | None) -> None:
    path = Path(root) / STATE
    if state is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state), encoding="utf-8")
    temporary.replace(path)


def is_quorate(state: dict[str, Any]) -> bool:
    at = state.get("quorate_at")
    return at is not None and time.time() >= at


def _members(state: dict[str, Any]) -> list[str]:
    lines = ["", "Membership information", "----------------------",
             "    Nodeid      Votes Name"]
    for nodeid, name in state["members"]:
        local = " (local)" if nodeid == state["local"] else ""
        lines.append(f"{nodeid:>10} {1:>10} {name}{local}")
    return lines


def quorumtool(root: str, argv: list[str]) -> int:
    state = read(root)
    if argv not in (["-s"], ["-l"]):
        print("corosync-quorumtool (simulated): only -s and -l", file=sys.stderr)
        return 1
    if state is None:
        print(NOT_RUNNING, file=sys.stderr)
        return 1
    if argv == ["-l"]:
        print("\n".join(_members(state)))
        return 0
    quorate = is_quorate(state)
    print("\n".join([
        "Quorum information", "------------------",
        "Quorum provider:  corosync_votequorum",
        f"Nodes:            {len(state['members'])}",
        f"Node ID:          {state['local']}",
        f"Quorate:          {'Yes' if quorate else 'No'}",
        *_members(state),
    ]))
    return 0 if quorate else 2


def cmapctl(root: str, argv: list[str]) -> int:
    state = read(root)
    if argv != ["-g", "totem.cluster_name"]:
        print("corosync-cmapctl (simulated): only -g totem.cluster_name", file=sys.stderr)
        return 1
    if state is None:
        print(CMAP_DOWN, file=sys.stderr)
        return 1
    print(f"totem.cluster_name (str) = {state['cluster_name']}")
    return 0


def main(program: str, argv: list[str]) -> int:
    root = os.environ.get("O2CB_ROOT", "/")
    if program == "corosync-quorumtool":
        return quorumtool(root, argv)
    return cmapctl(root, argv)
