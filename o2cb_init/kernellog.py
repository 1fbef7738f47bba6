"""The kernel log (/dev/kmsg), for the reason the kernel gave for a failure.

Each record of /dev/kmsg is ``PRIORITY,SEQUENCE,MICROSECONDS,FLAGS;MESSAGE``,
followed by lines of ``KEY=VALUE`` that start with a blank.  It is read
without blocking, so reading costs no process and never waits; with
``kernel.dmesg_restrict`` (Debian's default) only root can open it.

o2net logs why it refused a peer at the handshake (doc/kernel-measurements.md):
``o2net: node vm-b (num 1) at 10.9.9.2:7777 uses a network idle timeout of
40000 ms, but we use 30000 ms locally. Disconnecting.``, and every idle timeout
without a connection ``o2net: No connection established with node 1 after 30.0
seconds, check network and cluster configuration.``
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .system import System

KMSG = "/dev/kmsg"
# What the handshake compares, each with the setting of /etc/default/o2cb behind it.
HANDSHAKE_SETTINGS = {
    "network idle timeout": "O2CB_IDLE_TIMEOUT_MS",
    "keepalive delay": "O2CB_KEEPALIVE_DELAY_MS",
    "heartbeat timeout": "O2CB_HEARTBEAT_THRESHOLD",
}


def messages(system: System) -> list[str] | None:
    """The kernel log's messages, oldest first; None when it cannot be read."""
    records = system.read_records(KMSG)
    if records is None:
        return None
    found = []
    for record in records:
        for line in record.splitlines():
            if line and not line.startswith(" ") and ";" in line:
                found.append(line.split(";", 1)[1])
    return found


def o2net_refusal(log: list[str], number: int) -> str | None:
    """The kernel's latest reason for having no o2net connection to node ``number``:
    the handshake's refusal, else o2net's complaint that no connection came up."""
    refused = re.compile(rf"o2net: node \S+ \(num {number}\) at \S+ .*Disconnecting\.")
    waited = re.compile(rf"o2net: No connection established with node {number} after ")
    for pattern in (refused, waited):
        for message in reversed(log):
            if pattern.match(message):
                return message
    return None


def setting_behind(reason: str) -> str | None:
    """The /etc/default/o2cb setting whose value the peer and this node disagree on."""
    return next((setting for words, setting in HANDSHAKE_SETTINGS.items()
                 if f" uses a {words} of " in reason), None)
