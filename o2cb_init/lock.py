"""One run at a time: an exclusive flock held for a verb's whole run.

Two runs that change the machine at once (boot's start racing an
administrator's stop) would each act on a state the other is changing, and
leave a half-built cluster or a baseline record that names our own modules
as pre-existing.  Every verb that changes the machine holds this lock from
its first probe to its last change; the baseline record is written and
removed under it.  `status` never takes it.

The lock file under /run (under --root) carries the holder's pid, so a run
that gives up can say who it waited for.  The kernel drops the flock when
its holder dies, SIGKILL included, so a stale file never blocks.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator

from .errors import O2cbError
from .system import System

LOCK_DIR = "/run/o2cb"
LOCK_FILE = f"{LOCK_DIR}/lock"
TIMEOUT_VARIABLE = "O2CB_LOCK_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
POLL_INTERVAL = 0.05


class LockBusyError(O2cbError):
    """Another run held the lock for longer than the bound."""


def lock_timeout() -> float:
    """How long to wait for another run: $O2CB_LOCK_TIMEOUT seconds, else 30."""
    try:
        value = float(os.environ.get(TIMEOUT_VARIABLE, "").strip())
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value >= 0 else DEFAULT_TIMEOUT


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return text
    return "unknown"


_held: dict[str, int] = {}


@contextlib.contextmanager
def exclusive(system: System, verb: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the o2cb lock for the body; wait at most ``timeout`` seconds for it.

    Re-entrant within a process (restart = stop + start under one hold).
    """
    key = str(system.path(LOCK_FILE))
    if not system.changes_machine or _held.get(key):
        # A dry run changes nothing, so it needs no lock and must not create /run/o2cb.
        yield
        return
    limit = lock_timeout() if timeout is None else timeout
    directory = system.path(LOCK_DIR)
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(system.path(LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise O2cbError(f"{verb}: cannot open the lock {LOCK_FILE}: {error.strerror}") from None
    try:
        deadline = time.monotonic() + limit
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise O2cbError(
                        f"{verb}: cannot take the lock {LOCK_FILE}: {error.strerror}"
                    ) from None
            if time.monotonic() >= deadline:
                raise LockBusyError(
                    f"{verb}: another o2cb run (pid {_holder(fd)}) holds {LOCK_FILE};"
                    f" gave up after {limit:g} s (${TIMEOUT_VARIABLE})"
                )
            time.sleep(POLL_INTERVAL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        system.probe(f"holding {LOCK_FILE}")
        _held[key] = 1
        try:
            yield
        finally:
            _held.pop(key, None)
    finally:
        os.close(fd)
