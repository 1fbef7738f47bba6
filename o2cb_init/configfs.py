"""The o2cb node manager (o2nm) objects in configfs, one class per object.

Layout (doc/kernel.md)::

    cluster/NAME/                 idle_timeout_ms keepalive_delay_ms reconnect_delay_ms
    cluster/NAME/heartbeat/       dead_threshold mode
    cluster/NAME/heartbeat/UUID/  one directory per active heartbeat region:
                                  block_bytes start_block blocks dev pid
    cluster/NAME/node/NODE/       num ipv4_address ipv4_port local
"""

from __future__ import annotations

from .errors import InvalidValueError, StepError
from .system import System

O2NM_MAX_NAME_LEN = 64  # o2nm's limit for a node or cluster item name
# What a new cluster shows before anything is written.
NEW_CLUSTER_IDLE_TIMEOUT_MS = 30000
NEW_CLUSTER_KEEPALIVE_DELAY_MS = 2000


def check_name(kind: str, name: str) -> str:
    """Refuse any name that is not one configfs item: it is joined into a path.

    "ocfs2/node/node2" or ".." would reach another object; the command line
    checks cluster names too, this is the model's own guard.
    """
    shown = name if len(name) <= 40 else f"{name[:40]}... ({len(name)} characters)"
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or len(name.encode("utf-8", "surrogateescape")) > O2NM_MAX_NAME_LEN
        or " " in name
        or not name.isprintable()  # every other blank is unprintable too
    ):
        raise InvalidValueError(f"invalid {kind} name {shown!r}")
    return name


class ConfigfsObject:
    """A configfs directory whose files are attributes."""

    def __init__(self, system: System, path: str) -> None:
        self.system = system
        self.path = path

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def exists(self) -> bool:
        return self.system.is_dir(self.path)

    def read(self, attribute: str) -> str | None:
        return self.system.read_attribute(f"{self.path}/{attribute}")

    def read_int(self, attribute: str) -> int | None:
        value = self.read(attribute)
        return int(value) if value and value.lstrip("-").isdigit() else None

    def write(self, attribute: str, value: object) -> None:
        try:
            self.system.write_attribute(f"{self.path}/{attribute}", str(value))
        except OSError as error:
            if not self.exists():
                raise StepError(
                    f"Unable to set {attribute}={value}: {self.path} is gone"
                    " (another run removed it?)"
                ) from None
            raise StepError(
                f"Unable to set {attribute}={value} in {self.path}: {error.strerror}"
            ) from None

    # Attributes whose value is a number, shown as one by dump().
    NUMBERS = frozenset({"num", "ipv4_port", "local", "dead_threshold", "idle_timeout_ms",
                         "keepalive_delay_ms", "reconnect_delay_ms"})

    def dump(self) -> dict[str, object]:
        """This object's attributes and children as data, numbers as numbers."""
        data: dict[str, object] = {}
        for entry in self.system.listdir(self.path):
            path = f"{self.path}/{entry}"
            if self.system.is_dir(path):
                data[entry] = ConfigfsObject(self.system, path).dump()
                continue
            try:
                value = self.read(entry)
            except OSError:
                continue  # write-only or unreadable attributes
            if value is not None and entry in self.NUMBERS and value.lstrip("-").isdigit():
                data[entry] = int(value)
            else:
                data[entry] = value
        return data

    def create(self) -> None:
        try:
            self.system.mkdir(self.path)
        except OSError as error:
            raise StepError(f"Unable to create {self.path}: {error.strerror}") from None
        self.system.record_undo(f"creating {self.path}", self.delete)

    def delete(self) -> None:
        """Remove this object, children first; nothing to do when it is gone."""
        for child in self.children():
            child.delete()
        if self.exists():
            self.remove()

    def children(self) -> list[ConfigfsObject]:
        """Objects made by mkdir under this one (default groups go with their parent)."""
        return []

    def remove(self) -> None:
        try:
            self.system.rmdir(self.path)
        except OSError as error:
            raise StepError(f"Unable to remove {self.path}: {error.strerror}") from None


class Node(ConfigfsObject):
    def configure(self, number: int, address: str, port: int) -> None:
        """Set the node's identity in the only order the kernel accepts."""
        self.write("ipv4_address", address)
        self.write("ipv4_port", port)
        self.write("num", number)

    def set_local(self) -> None:
        """Mark this host's node; the kernel then starts o2net's listener."""
        self.write("local", 1)

    @property
    def is_local(self) -> bool:
        return self.read("local") == "1"


class HeartbeatRegion(ConfigfsObject):
    """cluster/NAME/heartbeat/UUID: a global heartbeat region, running once ``dev`` is set."""

    PARAMETERS = ("block_bytes", "start_block", "blocks")

    @property
    def running(self) -> bool:
        return self.exists() and bool(self.read("dev"))

    @property
    def device(self) -> str | None:
        """The device the region runs on, as users know it.

        The kernel shows the bare name (sdb, dm-0): /dev/NAME, or
        /dev/mapper/NAME for a device-mapper map.
        """
        name = self.read("dev") if self.exists() else None
        if not name:
            return None
        from . import blockdev  # here: only a running region has a device to name

        return blockdev.shown_path(self.system, name)

    def start(self, block_bytes: int, start_block: int, blocks: int, device_fd: int) -> None:
        """Set the region's geometry, then ``dev``: the kernel's heartbeat thread starts.

        o2hb takes ``dev`` as the number of a descriptor the writing process
        holds open on the block device; it takes its own reference, so the
        caller may close it once the write returns.
        """
        for attribute, value in zip(self.PARAMETERS, (block_bytes, start_block, blocks),
                                    strict=True):
            self.write(attribute, value)
        self.write("dev", device_fd)


class Cluster(ConfigfsObject):
    TIMEOUTS = ("idle_timeout_ms", "keepalive_delay_ms", "reconnect_delay_ms")

    @property
    def heartbeat(self) -> ConfigfsObject:
        return ConfigfsObject(self.system, f"{self.path}/heartbeat")

    def nodes(self) -> list[Node]:
        base = f"{self.path}/node"
        return [Node(self.system, f"{base}/{name}") for name in self.system.listdir(base)]

    def node(self, name: str) -> Node:
        return Node(self.system, f"{self.path}/node/{check_name('node', name)}")

    def children(self) -> list[ConfigfsObject]:
        return list(self.nodes())

    def region(self, uuid: str) -> HeartbeatRegion:
        return HeartbeatRegion(self.system, f"{self.path}/heartbeat/{check_name('region', uuid)}")

    def heartbeat_regions(self) -> list[str]:
        """UUIDs of active heartbeat regions: each directory under heartbeat/."""
        base = f"{self.path}/heartbeat"
        return [name for name in self.system.listdir(base) if self.system.is_dir(f"{base}/{name}")]

    def set_network_timeouts(self, idle_ms: int, keepalive_ms: int, reconnect_ms: int) -> None:
        """Write the timeouts in an order the kernel accepts.

        keepalive must stay below idle at every moment.  The idle timeout goes
        first unless it would fall to the current keepalive delay or below it;
        then the new keepalive, below the new idle timeout and so below the
        current one, goes first.
        """
        # A cluster that a daemon has yet to make will show the kernel's default.
        current = self.read_int("keepalive_delay_ms") or NEW_CLUSTER_KEEPALIVE_DELAY_MS
        if idle_ms > current:
            self.write("idle_timeout_ms", idle_ms)
            self.write("keepalive_delay_ms", keepalive_ms)
        else:
            self.write("keepalive_delay_ms", keepalive_ms)
            self.write("idle_timeout_ms", idle_ms)
        self.write("reconnect_delay_ms", reconnect_ms)


class Configfs:
    """The o2nm tree under a configfs mount point."""

    def __init__(self, system: System, mountpoint: str) -> None:
        self.system = system
        self.base = f"{mountpoint}/cluster"

    def available(self) -> bool:
        """True once the node manager has registered cluster/ in configfs."""
        return self.system.is_dir(self.base)

    def clusters(self) -> list[Cluster]:
        return [
            Cluster(self.system, f"{self.base}/{name}")
            for name in self.system.listdir(self.base)
            if self.system.is_dir(f"{self.base}/{name}")
        ]

    def cluster(self, name: str) -> Cluster:
        return Cluster(self.system, f"{self.base}/{check_name('cluster', name)}")

    @property
    def top(self) -> ConfigfsObject:
        """cluster/ itself: carries heartbeat_mode on 2007-era kernels."""
        return ConfigfsObject(self.system, self.base)
