"""Who listens on a TCP port, from /proc/net/tcp and /proc/net/tcp6 under the root.

o2net listens on the local node's address and port once ``local=1`` is
written.  Before that, a listener on the port is another program's, and
o2net's bind would fail at the ``local=1`` write, after the drivers are
loaded.  The sockets are read from the kernel's tables, their owners from
the descriptors in /proc/PID/fd (readable for other users' processes as
root only), all through the System seam, so that a --root tree answers as
the machine would.
"""

from __future__ import annotations

from .records import dataclass
from .system import System

TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
LISTEN = "0A"


@dataclass(frozen=True)
class Listener:
    address: str  # as text: 127.0.0.1, 0.0.0.0, ::
    port: int
    inode: int

    def covers(self, address: str) -> bool:
        """Whether a connection to ``address`` reaches this socket."""
        if self.address in ("0.0.0.0", "::"):
            return True
        return self.address == address or self.address == f"::ffff:{address}"


def _address(hex_text: str) -> str:
    """The kernel's address column: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_text)
    ordered = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    if len(ordered) == 4:
        return ".".join(str(byte) for byte in ordered)
    if ordered[:12] == V4_MAPPED:
        return "::ffff:" + ".".join(str(byte) for byte in ordered[12:])
    return _ipv6_text(ordered)


V4_MAPPED = bytes(10) + b"\xff\xff"


def _ipv6_text(raw: bytes) -> str:
    """RFC 5952's text of an IPv6 address: the longest run of two or more zero
    words (the first of equal runs) becomes "::"; the ipaddress module says the
    same but costs every start its import."""
    words = [f"{int.from_bytes(raw[i:i + 2], 'big'):x}" for i in range(0, 16, 2)]
    best, best_length, index = 0, 0, 0
    while index < 8:
        end = index
        while end < 8 and words[end] == "0":
            end += 1
        if end - index > best_length:
            best, best_length = index, end - index
        index = end + 1
    if best_length < 2:
        return ":".join(words)
    return ":".join(words[:best]) + "::" + ":".join(words[best + best_length:])


def listeners(system: System, port: int) -> list[Listener]:
    """The sockets listening on ``port``, over IPv4 and IPv6."""
    found = []
    for table in TCP_TABLES:
        text = system.read_optional(table) or ""
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != LISTEN:
                continue
            address, _, port_hex = fields[1].partition(":")
            try:
                if int(port_hex, 16) != port:
                    continue
                found.append(Listener(_address(address), port, int(fields[9])))
            except ValueError:
                continue
    return found


def owners(system: System, inodes: set[int]) -> dict[int, tuple[int, str]]:
    """inode -> (pid, program name) of the processes holding those sockets."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes if inode}
    found: dict[int, tuple[int, str]] = {}
    if not wanted:
        return found
    import os

    for entry in system.listdir("/proc"):
        if not entry.isdigit():
            continue
        fd_dir = system.path(f"/proc/{entry}/fd")
        try:
            descriptors = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or another user's (not root)
        for fd in descriptors:
            try:
                link = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if link in wanted:
                name = system.read_attribute(f"/proc/{entry}/comm") or "?"
                found[wanted[link]] = (int(entry), name)
    return found


def taken_by(system: System, address: str, port: int) -> list[str]:
    """Who listens where o2net would: "pid 123 (nginx)", or a socket no process shows."""
    found = [listener for listener in listeners(system, port) if listener.covers(address)]
    held = owners(system, {listener.inode for listener in found})
    result = []
    for listener in found:
        if listener.inode in held:
            pid, name = held[listener.inode]
            result.append(f"pid {pid} ({name})")
        else:
            result.append(f"a socket on {listener.address}:{port}")
    return result


def has_listener(system: System, address: str, port: int) -> bool:
    return any(listener.covers(address) for listener in listeners(system, port))


def process_listeners(system: System, address: str, port: int) -> list[str]:
    """The processes (not the kernel) listening where o2net would."""
    found = [listener for listener in listeners(system, port) if listener.covers(address)]
    held = owners(system, {listener.inode for listener in found})
    return [f"pid {pid} ({name})" for pid, name in held.values()]
