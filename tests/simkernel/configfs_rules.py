"""The kernel's rules for configfs (o2nm) and sysfs, enforced on System's file methods.

In a simulated root configfs is a plain directory tree, where any mkdir,
rmdir or write succeeds.  The real o2nm refuses many of them (doc/kernel.md,
"The o2nm tree in configfs"), and creates attribute files itself.
:func:`install` wraps ``System.mkdir``, ``System.rmdir`` and
``System.write_attribute`` so that, for a System whose root is a simulated
root, paths inside the mounted configfs and under /sys and /proc behave like
the kernel's: same files created, same errno on refusal (as ``OSError``).
Any other path, any other root and dry-run go to the original methods.

The errno each rule gives follows the o2nm sources (fs/ocfs2/cluster/
nodemanager.c, heartbeat.c) and configfs (fs/configfs/dir.c).
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from o2cb_init.changes import MKDIR, RMDIR, WRITE, Change

from . import faults, globalhb, o2net
from .engine import STATE_FILE, CommandError, Kernel, read_value, write_file

_MAX_NODES = 255
_U32_MAX = 2**32 - 1
_ADDRESS = re.compile(r"\s*(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")
_ORIGINAL = "__simkernel_original__"


def _fail(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


def _strtoul(text: str, base: int = 0) -> int | None:
    """simple_strtoul plus the o2nm check that only a newline may follow; None: EINVAL."""
    body = text
    if base == 0:
        match = re.match(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*", body)
    else:
        match = re.match(r"[0-9]+", body)
    if match is None:
        number, rest = 0, body
    elif base == 0 and match.group().lower().startswith("0x"):
        number, rest = int(match.group(), 16), body[match.end():]
    elif base == 0 and match.group().startswith("0") and len(match.group()) > 1:
        number, rest = int(match.group(), 8), body[match.end():]
    else:
        number, rest = int(match.group(), 10), body[match.end():]
    if rest and not rest.startswith("\n"):
        return None
    return number


class _Target:
    """Where a root-relative path falls in a simulated root."""

    def __init__(self, kernel: Kernel, kind: str, path: str, parts: list[str]) -> None:
        self.kernel = kernel
        self.kind = kind  # "configfs" or "pseudo" (/sys, /proc outside configfs)
        self.path = path  # normalised root-relative path, for messages
        self.parts = parts  # configfs: components below the configfs mount point

    @property
    def file(self) -> Path:
        return self.kernel.root / self.path.lstrip("/")


def _classify(system: Any, path: str) -> _Target | None:
    root = Path(system.root)
    if not (root / STATE_FILE).is_file():
        return None
    try:
        kernel = Kernel(root)
    except CommandError:
        return None
    normal = posixpath.normpath("/" + path.lstrip("/"))
    at = kernel.state["configfs_at"]
    if at and (normal == at or normal.startswith(at.rstrip("/") + "/")):
        inside = normal[len(at):].strip("/")
        return _Target(kernel, "configfs", normal, inside.split("/") if inside else [])
    if normal.split("/")[1] in ("sys", "proc"):
        return _Target(kernel, "pseudo", normal, [])
    return None


# -- mkdir --------------------------------------------------------------------


def _mkdir(target: _Target) -> None:
    kernel, parts, path = target.kernel, target.parts, target.path
    if target.file.exists():
        raise _fail(errno.EEXIST, path)
    if not target.file.parent.is_dir():
        raise _fail(errno.ENOENT, path)
    if target.kind == "pseudo" or not parts or parts[0] != "cluster":
        raise _fail(errno.EPERM, path)
    if len(parts) == 2:
        if kernel.cluster_names():
            raise _fail(errno.ENOSPC, path)
        kernel.make_cluster_dir(parts[1])
    elif len(parts) == 4 and parts[2] == "node":
        kernel.make_node_dir(parts[1], parts[3])
    elif len(parts) == 4 and parts[2] == "heartbeat":
        kernel.make_region_dir(parts[1], parts[3])
    else:
        raise _fail(errno.EPERM, path)


# -- rmdir --------------------------------------------------------------------


def _rmdir(target: _Target) -> None:
    kernel, parts, path = target.kernel, target.parts, target.path
    if not target.file.exists():
        raise _fail(errno.ENOENT, path)
    if not target.file.is_dir():
        raise _fail(errno.ENOTDIR, path)
    if target.kind == "pseudo" or not parts or parts[0] != "cluster":
        raise _fail(errno.EPERM, path)
    relative = "/".join(parts[1:])
    if len(parts) == 2:
        cluster = target.file
        if any(p.is_dir() for p in (cluster / "heartbeat").iterdir()):
            raise _fail(errno.EBUSY, path)
        if any(p.is_dir() for p in (cluster / "node").iterdir()):
            raise _fail(errno.ENOTEMPTY, path)
    elif len(parts) == 4 and parts[2] == "node":
        held = any(r.startswith(f"{parts[1]}/") for r in kernel.state["held_regions"])
        if held and read_value(target.file / "local") == "1":
            raise _fail(errno.EBUSY, path)  # a mounted volume depends on this node
        if read_value(target.file / "local") == "1":
            o2net.stop_listening(kernel.root)
    elif len(parts) == 4 and parts[2] == "heartbeat":
        if relative in kernel.state["held_regions"]:
            raise _fail(errno.EBUSY, path)
    else:
        raise _fail(errno.EPERM, path)  # default groups and cluster/ itself
    kernel.remove_item_dir(relative)


# -- attributes ---------------------------------------------------------------


def _write(target: _Target, value: str) -> str | None:
    """Check a write; return the value the kernel then shows (None: store as written)."""
    path = target.path
    if target.file.is_dir():
        raise _fail(errno.EISDIR, path)
    if not target.file.exists():
        raise _fail(errno.ENOENT, path)
    page = f"{value}\n"
    if target.kind == "pseudo":
        return _write_sysfs(target, page)
    parts = target.parts
    if not parts or parts[0] != "cluster":
        return None
    if parts[1:] == ["heartbeat_mode"]:
        mode = page.strip()
        if mode not in target.kernel.available_heartbeat_modes():
            raise _fail(errno.EINVAL, path)
        return mode
    if parts[1:] == ["heartbeat_available_modes"]:
        raise _fail(errno.EACCES, path)
    if len(parts) == 3:
        return _write_cluster(target, parts[2], page)
    if len(parts) == 4 and parts[2] == "heartbeat":
        return _write_heartbeat(target, parts[3], page)
    if len(parts) == 5 and parts[2] == "node":
        return _write_node(target, parts[1], parts[3], parts[4], page)
    if len(parts) == 5 and parts[2] == "heartbeat":
        return globalhb.write_region_attribute(target.file.parent, parts[4], page)
    return None


def _write_sysfs(target: _Target, page: str) -> str | None:
    path = target.path
    if not path.startswith("/sys/fs/ocfs2/"):
        return None
    name = path.rsplit("/", 1)[1]
    if name != "cluster_stack":
        raise _fail(errno.EACCES, path)  # the other stackglue files are read-only
    label = page[:-1] if page.endswith("\n") else page
    if len(label) != 4:
        raise _fail(errno.EINVAL, path)
    current = read_value(target.file)
    if target.kernel.stack_active() and label != current:
        raise _fail(errno.EBUSY, path)
    return label


def _write_cluster(target: _Target, attribute: str, page: str) -> str | None:
    path = target.path
    cluster = target.file.parent
    if attribute == "fence_method":
        method = page[:-1] if page.endswith("\n") else page
        if method not in ("reset", "panic"):
            raise _fail(errno.EINVAL, path)
        return method
    if attribute not in ("idle_timeout_ms", "keepalive_delay_ms", "reconnect_delay_ms"):
        return None
    number = _strtoul(page)
    if number is None or number == 0:
        raise _fail(errno.EINVAL, path)
    if number >= _U32_MAX:
        raise _fail(errno.ERANGE, path)
    if attribute == "idle_timeout_ms":
        keepalive = cluster / "keepalive_delay_ms"
        if keepalive.exists() and number <= int(read_value(keepalive)):
            raise _fail(errno.EINVAL, path)
    if attribute == "keepalive_delay_ms":
        idle = cluster / "idle_timeout_ms"
        if idle.exists() and number >= int(read_value(idle)):
            raise _fail(errno.EINVAL, path)
    return str(number)


def _write_heartbeat(target: _Target, attribute: str, page: str) -> str | None:
    path = target.path
    if attribute == "mode":
        return globalhb.write_mode(target.kernel.state, target.file.parent, page)
    if attribute == "dead_threshold":
        number = _strtoul(page, 10)
        if number is None:
            raise _fail(errno.EINVAL, path)
        # o2hb_dead_threshold_set ignores values at or below its minimum of 2
        return str(number) if number > 2 else read_value(target.file)
    return None


def _write_node(target: _Target, cluster: str, node: str, attribute: str, page: str) -> str | None:
    kernel, path = target.kernel, target.path
    key = f"{cluster}/node/{node}"
    done: list[str] = kernel.state["node_set"].setdefault(key, [])
    nodes_dir = kernel.configfs_dir() / "cluster" / cluster / "node"
    others = [p for p in nodes_dir.iterdir() if p.is_dir() and p.name != node]

    def taken(attr: str, value: str) -> bool:
        return any(
            attr in kernel.state["node_set"].get(f"{cluster}/node/{other.name}", [])
            and read_value(other / attr) == value
            for other in others
        )

    if attribute == "ipv4_address":
        match = _ADDRESS.match(page)
        if match is None:
            raise _fail(errno.EINVAL, path)
        octets = [int(part) for part in match.groups()]
        if any(octet > 255 for octet in octets):
            raise _fail(errno.ERANGE, path)
        address = ".".join(str(octet) for octet in octets)
        if taken("ipv4_address", address):
            raise _fail(errno.EEXIST, path)
        if "ipv4_address" in done:
            raise _fail(errno.EBUSY, path)
        done.append("ipv4_address")
        return address
    if attribute == "ipv4_port":
        number = _strtoul(page)
        if number is None or number == 0:
            raise _fail(errno.EINVAL, path)
        if number >= 0xFFFF:
            raise _fail(errno.ERANGE, path)
        if "ipv4_port" in done:
            raise _fail(errno.EBUSY, path)
        done.append("ipv4_port")
        return str(number)
    if attribute == "num":
        number = _strtoul(page)
        if number is None:
            raise _fail(errno.EINVAL, path)
        if number >= _MAX_NODES:
            raise _fail(errno.ERANGE, path)
        if "ipv4_address" not in done or "ipv4_port" not in done:
            raise _fail(errno.EINVAL, path)
        if taken("num", str(number)):
            raise _fail(errno.EEXIST, path)
        if "num" in done:
            raise _fail(errno.EBUSY, path)
        done.append("num")
        return str(number)
    if attribute == "local":
        number = _strtoul(page)
        if number is None:
            raise _fail(errno.EINVAL, path)
        if not all(a in done for a in ("ipv4_address", "ipv4_port", "num")):
            raise _fail(errno.EINVAL, path)
        flag = "1" if number else "0"
        if flag == "1" and any(read_value(other / "local") == "1" for other in others):
            raise _fail(errno.EBUSY, path)  # another node is already the local one
        if flag == "1":
            node_dir = nodes_dir / node
            o2net.listen(kernel.root, read_value(node_dir / "ipv4_address"),
                         int(read_value(node_dir / "ipv4_port")))
        return flag
    return None


# -- wrapping System ----------------------------------------------------------


def _fault(target: _Target) -> str | None:
    """Count a configfs or sysfs change; fail or kill here when asked (faults.py)."""
    try:
        return faults.before(target.kernel.root, "configfs", os.getpid())
    except faults.Injected:
        raise faults.os_error(target.path) from None


# Each wrapper asks the seam's recorder first (System.make), exactly once, as
# the original method does: while a verb is planned nothing is changed here
# either.  Paths outside the simulated kernel are changed as the original
# would change them.


def _wrap_mkdir(original: Callable[..., None]) -> Callable[..., None]:
    def mkdir(self: Any, path: str, parents: bool = False) -> None:
        if self.make(Change(MKDIR, path)) is not None:
            return
        target = _classify(self, path)
        if target is None or (parents and target.file.is_dir()):
            if parents:
                os.makedirs(self.path(path), exist_ok=True)
            else:
                os.mkdir(self.path(path))
            return
        fault = _fault(target)
        _mkdir(target)
        target.kernel.save()
        faults.after(fault, os.getpid())

    setattr(mkdir, _ORIGINAL, original)
    return mkdir


def _wrap_rmdir(original: Callable[..., None]) -> Callable[..., None]:
    def rmdir(self: Any, path: str) -> None:
        if self.make(Change(RMDIR, path)) is not None:
            return
        target = _classify(self, path)
        if target is None:
            os.rmdir(self.path(path))
            return
        fault = _fault(target)
        _rmdir(target)
        target.kernel.save()
        if fault == "raced":  # another program removed it first: this rmdir finds it gone
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), self.path(path))
        faults.after(fault, os.getpid())

    setattr(rmdir, _ORIGINAL, original)
    return rmdir


def _wrap_write_attribute(original: Callable[..., None]) -> Callable[..., None]:
    def write_attribute(self: Any, path: str, value: str) -> None:
        if self.make(Change(WRITE, path, value)) is not None:
            return
        target = _classify(self, path)
        fault = _fault(target) if target is not None else None
        shown = _write(target, str(value)) if target is not None else None
        with open(self.path(path), "w", encoding="utf-8") as handle:
            handle.write(f"{value}\n")
        if target is None:
            return
        if shown is not None:
            write_file(target.file, f"{shown}\n")
        target.kernel.save()
        faults.after(fault, os.getpid())

    setattr(write_attribute, _ORIGINAL, original)
    return write_attribute


_WRAPPERS = {
    "mkdir": _wrap_mkdir,
    "rmdir": _wrap_rmdir,
    "write_attribute": _wrap_write_attribute,
}


def install(system_class: Any = None, monkeypatch: Any = None) -> None:
    """Wrap System's mkdir, rmdir and write_attribute with the kernel's rules.

    With ``monkeypatch`` (pytest's fixture) the originals come back after the
    test; without it the class stays wrapped for the life of the process.
    Installing twice does not wrap twice.
    """
    if system_class is None:
        from o2cb_init.system import System

        system_class = System
    for name, wrap in _WRAPPERS.items():
        current = getattr(system_class, name)
        if hasattr(current, _ORIGINAL):
            continue
        wrapped = wrap(current)
        if monkeypatch is not None:
            monkeypatch.setattr(system_class, name, wrapped)
        else:
            setattr(system_class, name, wrapped)


def uninstall(system_class: Any = None) -> None:
    """Put the original methods back (for code that installed without monkeypatch)."""
    if system_class is None:
        from o2cb_init.system import System

        system_class = System
    for name in _WRAPPERS:
        current = getattr(system_class, name)
        original = getattr(current, _ORIGINAL, None)
        if original is not None:
            setattr(system_class, name, original)
