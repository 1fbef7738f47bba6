"""The heartbeat2 stack: userspace heartbeat, cluster layout from cluster.conf.

heartbeat2 mirrors the cluster's layout in /etc/ocfs2/cluster.conf, so the
cluster goes online and offline in configfs exactly as for o2cb; only the
heartbeat method differs (`user` instead of `disk`).  It runs on 2007-era
kernels (configfs cluster/heartbeat_mode).  Stack-glue kernels cannot run
it: /sys/fs/ocfs2/cluster_stack takes a four-character name, and their
userspace stack is pcmk.
"""

from __future__ import annotations

from typing import ClassVar

from ..kernel import Generation
from .user import UserspaceStack


class Heartbeat2Stack(UserspaceStack):
    name = "heartbeat2"
    generations: ClassVar[frozenset[Generation]] = frozenset({Generation.HEARTBEAT_MODE})

    def unsupported_reason(self, generation: Generation) -> str:
        if generation is Generation.STACKGLUE:
            return (
                "cluster stack heartbeat2 cannot run on this kernel: its stack glue takes a"
                " four-character stack name in /sys/fs/ocfs2/cluster_stack, and \"heartbeat2\""
                " is not one; the userspace stack such kernels run is pcmk (O2CB_STACK=pcmk)"
            )
        return super().unsupported_reason(generation)
