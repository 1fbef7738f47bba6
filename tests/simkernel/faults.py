"""Faults on demand: fail, or SIGKILL the tool, at the Nth change of a kind.

Set ``O2CB_SIM_FAULT=KIND:N:ACTION`` in the environment of an ``o2cb`` run:

- KIND: ``modprobe`` (loads and removals), ``mount``, ``umount``, or
  ``configfs`` (mkdir, rmdir and attribute writes in configfs and sysfs);
- N: the Nth call of that kind in the run, from 1;
- ACTION: ``fail`` (the call fails as the kernel or command would, nothing
  changes), ``kill`` (the tool is SIGKILLed before the change) or
  ``killafter`` (SIGKILLed right after the change is made) or ``raced``
  (another process made the same change meanwhile: it is made, and the
  call then fails as it does when it finds it done: a mount with exit 32,
  a configfs rmdir with ENOENT; other calls are made as if unfaulted).

``O2CB_SIM_FAULT=count`` only counts.  Either way the calls of the run are
counted per kind in ``.simkernel/faults.json`` under the root, which
:func:`counts` reads back and :func:`reset` clears.
"""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

VARIABLE = "O2CB_SIM_FAULT"
COUNTS_FILE = ".simkernel/faults.json"
KINDS = ("modprobe", "mount", "umount", "configfs")


class Injected(Exception):
    """The fault asked for: fail this call."""


def _counts_path(root: Path | str) -> Path:
    return Path(root) / COUNTS_FILE


def counts(root: Path | str) -> dict[str, int]:
    try:
        return dict(json.loads(_counts_path(root).read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError):
        return {}


def reset(root: Path | str) -> None:
    _counts_path(root).unlink(missing_ok=True)


def _spec() -> tuple[str, int, str] | None:
    text = os.environ.get(VARIABLE, "")
    parts = text.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2]


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def before(root: Path | str, kind: str, tool_pid: int) -> str | None:
    """Count this call; act on a fault set for it.  Returns "killafter" when the
    caller must kill ``tool_pid`` once the change is made."""
    if not os.environ.get(VARIABLE):
        return None
    numbers = counts(root)
    numbers[kind] = numbers.get(kind, 0) + 1
    _counts_path(root).parent.mkdir(parents=True, exist_ok=True)
    _counts_path(root).write_text(json.dumps(numbers), encoding="utf-8")
    spec = _spec()
    if spec is None or spec[0] != kind or spec[1] != numbers[kind]:
        return None
    action = spec[2]
    if action == "kill":
        # Nothing changes: a change made while the test already reads the state would race.
        _kill(tool_pid)
    if action in ("fail", "kill"):
        raise Injected(f"simkernel: injected failure of {kind} call {numbers[kind]}")
    return action if action in ("killafter", "raced") else None


def after(action: str | None, tool_pid: int) -> None:
    if action == "killafter":
        _kill(tool_pid)


def os_error(path: str) -> OSError:
    return OSError(errno.EIO, os.strerror(errno.EIO), path)
