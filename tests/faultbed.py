"""Helpers for the crash, fault and race tests: the state a verb may change, and its faults.

A faulted run goes through a subprocess (``runs.o2cb_process``: a SIGKILL
must hit the tool, not pytest); the runs that follow it go in-process
(``runs.o2cb``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from runs import o2cb_process
from simkernel import SimKernel, faults

from o2cb_init.baseline import BASELINE_FILE


def state(sim: SimKernel) -> dict[str, Any]:
    """What a verb may change, with paths relative to the root (comparable across roots)."""
    root = str(sim.root)
    return {
        "modules": sim.modules(),
        "mounts": sorted((point.replace(root, "", 1) or "/", fstype)
                         for point, fstype in sim.mounts()),
        "sysfs": sim.sysfs(),
        "tree": sim.tree(),
        "baseline": sim.path(BASELINE_FILE).exists(),
    }


def fault_points(sim: SimKernel, *args: str) -> dict[str, int]:
    """Run the verb once, counting its changes of each kind."""
    faults.reset(sim.root)
    run = o2cb_process(sim, *args, fault="count")
    assert run.exit_code == 0, run.stderr
    numbers = faults.counts(sim.root)
    faults.reset(sim.root)
    return numbers


def files(root: Path) -> dict[str, str]:
    """Every directory and file under the root, with a digest of each file."""
    seen: dict[str, str] = {}
    for directory, subdirectories, names in os.walk(root):
        for name in subdirectories:
            seen[os.path.relpath(os.path.join(directory, name), root)] = "<dir>"
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                seen[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return seen
