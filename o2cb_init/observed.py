"""What the kernel runs, for the verbs that must work without a valid config.

A cluster that runs must always be stoppable and reportable: when the
configuration file is missing or invalid, `stop`, `unload`, `offline`,
`force-offline`, `status` and `online-status` take the stack and the
cluster from what the kernel shows (the stack named in
/sys/fs/ocfs2/cluster_stack or whose control daemons run, the cluster in
configfs) instead of refusing with exit 6.
"""

from __future__ import annotations

from . import config
from .config import Settings
from .configfs import Configfs
from .errors import O2cbError
from .kernel import Kernel
from .system import System

KNOWN_STACKS = ("o2cb", "cman", "pcmk")


def observed_stack(system: System, kernel: Kernel) -> str:
    named = kernel.cluster_stack()
    if named in KNOWN_STACKS:
        return named
    from .daemons import Daemon

    for stack, program in (("cman", "o2cb_controld"), ("pcmk", "ocfs2_controld")):
        if Daemon(system, program, stack).is_running():
            return stack
    return "o2cb"


def _configured_cluster(system: System, path: str) -> str:
    """O2CB_BOOTCLUSTER if the file still gives a valid one, else empty."""
    try:
        settings, _ = config.current(system, path)
    except O2cbError:
        return ""
    return settings.bootcluster


def observed_settings(system: System, path: str) -> Settings:
    """Settings that describe what runs: stack and the cluster the kernel has.

    pcmk has no cluster in configfs: its name comes from the file when it
    still gives one, else from corosync, else the stack's name stands for it.
    """
    kernel = Kernel(system)
    stack = observed_stack(system, kernel)
    clusters = Configfs(system, kernel.configfs_mountpoint()).clusters()
    if clusters:
        cluster = clusters[0].name
    elif stack == "pcmk":
        from .corosync import cluster_name

        cluster = _configured_cluster(system, path) or cluster_name(system) or stack
    else:
        cluster = ""
    return Settings(path=path, stack=stack, bootcluster=cluster)
