"""What corosync says: is it installed and running, its cluster's name, quorum, members.

Read through corosync's own tools, never its sockets, as an administrator
would (doc/pcmk.md has their outputs):

- ``corosync-quorumtool -s`` exits 0 when quorate, 2 when running without
  quorum, 1 when corosync does not run;
- ``corosync-cmapctl -g totem.cluster_name`` prints
  ``totem.cluster_name (str) = NAME``;
- ``corosync-quorumtool -l`` lists the membership: node id, votes, name,
  ``(local)`` after this node's.

Nothing here changes the machine; each answer is one command run.
"""

from __future__ import annotations

import time
from enum import Enum

from .records import dataclass
from .system import System

QUORUMTOOL = "corosync-quorumtool"
CMAPCTL = "corosync-cmapctl"
NAME_KEY = "totem.cluster_name"
POLL_INTERVAL = 0.5


class Quorum(Enum):
    QUORATE = "quorate"
    NOT_QUORATE = "not quorate"
    DOWN = "not running"


@dataclass(frozen=True)
class Member:
    nodeid: int
    name: str
    local: bool


def installed(system: System) -> bool:
    return all(system.which(program) for program in (QUORUMTOOL, CMAPCTL))


def quorum(system: System) -> Quorum:
    """What `corosync-quorumtool -s` says; DOWN as well when it is not installed."""
    if not system.which(QUORUMTOOL):
        return Quorum.DOWN
    result = system.run([QUORUMTOOL, "-s"], changes=False)
    if result.returncode == 0:
        return Quorum.QUORATE
    if result.returncode == 2:
        return Quorum.NOT_QUORATE
    return Quorum.DOWN


def cluster_name(system: System) -> str | None:
    """totem.cluster_name as corosync runs it; None when corosync does not answer."""
    if not system.which(CMAPCTL):
        return None
    result = system.run([CMAPCTL, "-g", NAME_KEY], changes=False)
    if result.returncode != 0:
        return None
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.split() and key.split()[0] == NAME_KEY:
            return value.strip()
    return None


def members(system: System) -> list[Member]:
    """corosync's membership, as `corosync-quorumtool -l` lists it (empty when down)."""
    if not system.which(QUORUMTOOL):
        return []
    result = system.run([QUORUMTOOL, "-l"], changes=False)
    if result.returncode != 0:
        return []
    found = []
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0].isdigit() and words[1].isdigit():
            found.append(Member(int(words[0]), words[2], "(local)" in words[3:]))
    return found


def wait_for_quorum(system: System, seconds: float) -> Quorum:
    """corosync's quorum, asked again until it is quorate or ``seconds`` have passed.

    corosync answers before its membership has formed, and a two_node
    cluster waits for both nodes (wait_for_all): at boot quorum comes late.
    """
    deadline = time.monotonic() + seconds
    state = quorum(system)
    while state is Quorum.NOT_QUORATE and time.monotonic() < deadline:
        system.probe(f"corosync is not quorate yet; asking again for {seconds:g} s at most")
        time.sleep(POLL_INTERVAL)
        state = quorum(system)
    return state
