"""The global heartbeat regions of an o2cb cluster.

In global heartbeat mode (``heartbeat_mode = global`` in cluster.conf) the
kernel heartbeats on the devices listed in ``heartbeat:`` stanzas, whatever
is mounted, instead of on each mounted volume.  The mode is one value for
the whole o2hb module and is taken only while no region exists, so it is
written before the first region.  Each region is started as ocfs2-tools'
o2cb tool starts it: a directory named by the volume's UUID, then its
geometry (read from the volume's heartbeat system file by ocfs2disk), then
``dev`` as a descriptor of the block device.

While a volume is mounted the kernel depends on the regions (it pins them:
rmdir gives EBUSY), so stopping them is refused.  In local mode the regions
belong to the mounted volumes and are none of this part's business.
"""

from __future__ import annotations

import functools
import os

from ..clusterconf import ClusterConf
from ..configfs import Cluster, HeartbeatRegion
from ..errors import StepError
from .o2nm import HEARTBEAT_STILL_ACTIVE, pending_regions, removed_regions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .. import ocfs2disk
    from ..context import Context

GLOBAL = "global"


class HeartbeatRegions:
    def __init__(self, context: Context) -> None:
        self.system = context.system
        self.kernel = context.kernel
        self.steps = context.steps
        self.device_timeout = context.settings.heartbeat_device_timeout

    # -- the mode ------------------------------------------------------------

    def set_mode(self, target: Cluster, layout: ClusterConf) -> None:
        """Give the kernel the layout's heartbeat mode, before any region exists."""
        wanted = layout.heartbeat_mode
        current = target.heartbeat.read("mode")
        if current is None:
            if wanted == GLOBAL:
                raise StepError(
                    f"this kernel has no global heartbeat ({target.heartbeat.path}/mode is missing)"
                )
            return  # older kernels heartbeat locally, without a mode
        if current == wanted:
            return
        target.heartbeat.write("mode", wanted)
        self.system.record_undo(
            f"setting heartbeat mode {wanted}", lambda: target.heartbeat.write("mode", current)
        )
        if target.heartbeat.read("mode") != wanted:
            raise StepError(
                f"Unable to set heartbeat mode {wanted}: heartbeat regions of mode"
                f" {current} are active"
            )

    # -- online --------------------------------------------------------------

    def online(self, target: Cluster, layout: ClusterConf) -> bool:
        """Start every region of the layout that does not run yet, then stop the
        regions that were removed from the layout since, as the o2cb tool does.
        True when there was something to start or stop."""
        names = pending_regions(target, layout)
        removed = removed_regions(target, layout)
        if not names and not removed:
            return False

        def start_and_stop() -> None:
            found = self.devices(names)
            for uuid in names:
                self.start(target.region(uuid), found[uuid])
            # Last, so that nothing of this part fails after a region stopped;
            # the stack's later steps (o2hbmonitor) cannot fail the verb.  The
            # undo restarts a stopped region all the same, for the one case
            # left: a later region of several that will not stop.
            if removed:
                self.stop_removed(target, removed)

        self.steps.add(f'Starting global heartbeat for cluster "{target.name}"', start_and_stop)
        return True

    def stop_removed(self, target: Cluster, names: list[str]) -> None:
        """Stop regions no longer in cluster.conf; refused while a volume is mounted.

        In global mode every mounted volume heartbeats through all the
        regions (the kernel pins none above three), so any mounted OCFS2
        volume refuses it, before anything stops.  The o2cb tool fails its
        start-heartbeat the same way when the kernel refuses the rmdir.
        """
        if self.kernel.mounts_of_type("ocfs2"):
            raise StepError(
                f"heartbeat region {names[0]} is no longer in cluster.conf but cannot be"
                " stopped while an OCFS2 volume is mounted"
            )
        for uuid in names:
            region = target.region(uuid)
            try:
                region.remove()
            except StepError:
                raise StepError(
                    f"heartbeat region {uuid} is in use and cannot be stopped"
                ) from None
            self.system.record_undo(f"stopping heartbeat region {uuid}",
                                    functools.partial(self.start, region))

    def devices(self, uuids: list[str]) -> dict[str, ocfs2disk.Region]:
        """The regions' devices, waited for at most O2CB_HEARTBEAT_DEVICE_TIMEOUT s in
        all: at boot an iSCSI login or a multipath map may come a little after us."""
        if not uuids:
            return {}
        from .. import ocfs2disk  # here: status and stop never read a volume

        try:
            return ocfs2disk.wait_for_devices(self.system, uuids, self.device_timeout)
        except ocfs2disk.DiskError as error:
            raise StepError(error.message) from None

    def start(self, region: HeartbeatRegion, found: ocfs2disk.Region | None = None) -> None:
        if found is None:
            found = self.devices([region.name])[region.name]
        if region.exists():
            region.remove()  # left by a run killed before it set dev: start it afresh
        region.create()
        try:
            fd = os.open(self.system.path(found.device), os.O_RDONLY)
        except OSError as error:
            raise StepError(
                f"heartbeat region {region.name}: cannot open {found.device}: {error.strerror}"
            ) from None
        try:
            region.start(found.block_bytes, found.start_block, found.blocks, fd)
        finally:
            os.close(fd)

    # -- offline -------------------------------------------------------------

    def running_global(self, target: Cluster) -> list[str]:
        """The regions that run in global mode (none in local mode)."""
        if not target.exists() or target.heartbeat.read("mode") != GLOBAL:
            return []
        return target.heartbeat_regions()

    def offline(self, target: Cluster) -> None:
        """Stop the regions of a cluster in global mode; refused while a volume is mounted."""
        names = self.running_global(target)
        if not names:
            return

        def stop() -> None:
            # With more than three regions the kernel pins none of them, yet a
            # mounted volume still depends on them: look at the mounts first.
            if self.kernel.mounts_of_type("ocfs2"):
                raise StepError(HEARTBEAT_STILL_ACTIVE)
            for uuid in names:
                try:
                    target.region(uuid).remove()
                except StepError:
                    raise StepError(HEARTBEAT_STILL_ACTIVE) from None

        self.steps.add(f'Stopping global heartbeat on cluster "{target.name}"', stop)
