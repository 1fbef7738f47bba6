"""The kernel's TCP tables and o2net/o2hb's debugfs files, as the tool reads them.

o2net listens on the local node's address and port from the ``local=1``
write until that node goes: the bed writes its socket into /proc/net/tcp
(configfs_rules.py calls ``listen``).  A socket of another program is a
line of the same table plus /proc/PID/fd/N linking to ``socket:[INODE]``.
Liveness and connections (o2hb/livenodes, o2net/connected_nodes) are
written by the tests that need them, as a peer would make them, and so is
the kernel log (/dev/kmsg, a plain file here: the tool reads it to its end).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from .engine import write_file

TCP = "proc/net/tcp"
HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
          "   uid  timeout inode\n")
O2NET_INODE = 4242  # a kernel socket: no process holds it
DEBUGFS = "sys/kernel/debug"


def _hex(address: str) -> str:
    """An IPv4 address as /proc/net/tcp shows it on a little-endian machine."""
    return ipaddress.IPv4Address(address).packed[::-1].hex().upper()


def _line(address: str, port: int, inode: int) -> str:
    return (f"   0: {_hex(address)}:{port:04X} 00000000:0000 0A 00000000:00000000"
            f" 00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n")


def _lines(root: Path) -> list[str]:
    path = root / TCP
    return path.read_text(encoding="utf-8").splitlines(keepends=True)[1:] if path.exists() else []


def add_listener(root: Path, address: str, port: int, inode: int) -> None:
    write_file(root / TCP, HEADER + "".join([*_lines(root), _line(address, port, inode)]))


def remove_listener(root: Path, inode: int) -> None:
    kept = [line for line in _lines(root) if line.split()[9] != str(inode)]
    write_file(root / TCP, HEADER + "".join(kept))


def listen(root: Path, address: str, port: int) -> None:
    """o2net's listener, made by the local=1 write."""
    remove_listener(root, O2NET_INODE)
    add_listener(root, address, port, O2NET_INODE)


def stop_listening(root: Path) -> None:
    remove_listener(root, O2NET_INODE)


def process_socket(root: Path, pid: int, name: str, address: str, port: int,
                   inode: int = 5555) -> None:
    """Another program listening: its socket in the table, its descriptor in /proc/PID/fd."""
    add_listener(root, address, port, inode)
    fd_dir = root / f"proc/{pid}/fd"
    fd_dir.mkdir(parents=True, exist_ok=True)
    link = fd_dir / "3"
    link.unlink(missing_ok=True)
    link.symlink_to(f"socket:[{inode}]")
    write_file(root / f"proc/{pid}/comm", f"{name}\n")


def set_nodes(root: Path, live: list[int] | None = None,
              connected: list[int] | None = None) -> None:
    """What o2hb and o2net show in debugfs: node numbers, each followed by a blank."""
    if live is not None:
        write_file(root / DEBUGFS / "o2hb/livenodes", "".join(f"{n} " for n in live) + "\n")
    if connected is not None:
        write_file(root / DEBUGFS / "o2net/connected_nodes",
                   "".join(f"{n} " for n in connected) + "\n")


KMSG = "dev/kmsg"


def kernel_log(root: Path, *messages: str) -> None:
    """Add ``messages`` to the kernel log, as /dev/kmsg gives them: a record a line,
    ``PRIORITY,SEQUENCE,MICROSECONDS,FLAGS;MESSAGE``, then its ``KEY=VALUE`` lines."""
    path = root / KMSG
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    records = [line for line in old.splitlines() if not line.startswith(" ")]
    new = "".join(f"5,{len(records) + n},{(len(records) + n) * 1000},-;{message}\n"
                  " SUBSYSTEM=o2net\n" for n, message in enumerate(messages))
    write_file(path, old + new)
