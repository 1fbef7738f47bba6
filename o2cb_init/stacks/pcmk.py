"""The pcmk stack: Pacemaker's membership, run into the kernel by ocfs2_controld.

The userspace stack that stack-glue kernels run.  Pacemaker owns the
cluster's layout and name (O2CB_BOOTCLUSTER is taken as it is), so there is
no o2nm cluster in configfs: online loads ocfs2 and starts
ocfs2_controld.pcmk, offline stops it once no volume depends on it.
"""

from __future__ import annotations

from typing import ClassVar

from ..kernel import Generation
from .user import ControlDaemonStack


class PcmkStack(ControlDaemonStack):
    name = "pcmk"
    generations: ClassVar[frozenset[Generation]] = frozenset({Generation.STACKGLUE})
    daemon_names = ("ocfs2_controld",)

    def unsupported_reason(self, generation: Generation) -> str:
        return (
            "cluster stack pcmk needs the ocfs2 stack glue (/sys/fs/ocfs2/cluster_stack),"
            " which this kernel's ocfs2 drivers do not have"
        )
