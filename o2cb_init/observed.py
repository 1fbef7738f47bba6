"""What the kernel runs, for the verbs that must work without a valid config.

A cluster that runs must always be stoppable and reportable: when the
configuration file is missing or invalid, `stop`, `unload`, `offline`,
`force-offline`, `status` and `online-status` take the stack and the
cluster from what the kernel shows (the stack named in
/sys/fs/ocfs2/cluster_stack or whose control daemons run, the cluster in
configfs) instead of refusing with exit 6.
"""

from __future__ import annotations

from .config import Settings
from .configfs import Configfs
from .daemons import Daemon
from .kernel import Kernel
from .system import System

KNOWN_STACKS = ("o2cb", "cman", "pcmk")


def observed_stack(system: System, kernel: Kernel) -> str:
    named = kernel.cluster_stack()
    if named in KNOWN_STACKS:
        return named
    for stack, program in (("cman", "o2cb_controld"), ("pcmk", "ocfs2_controld")):
        if Daemon(system, program, stack).is_running():
            return stack
    return "o2cb"


def observed_settings(system: System, path: str) -> Settings:
    """Settings that describe what runs: stack and the cluster the kernel has."""
    kernel = Kernel(system)
    clusters = Configfs(system, kernel.configfs_mountpoint()).clusters()
    return Settings(
        path=path,
        stack=observed_stack(system, kernel),
        bootcluster=clusters[0].name if clusters else "",
    )
