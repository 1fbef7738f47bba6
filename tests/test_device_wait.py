"""Waiting for the devices of global heartbeat regions, one bound for the whole wait.

The devices are volumes on the simulated kernel that appear while the wait
runs (a login, a multipath map), or never; the clock is the real one where
the test is about time passing, a fake one where it counts the looks.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from simkernel import SimKernel, globalhb

from o2cb_init import config, ocfs2disk
from o2cb_init.system import System

pytestmark = pytest.mark.skipif(
    shutil.which("mkfs.ocfs2") is None, reason="mkfs.ocfs2 (ocfs2-tools) is not installed"
)

WWID = "36001405a1b2c3d4e5f60718293a4b5c6"
ABSENT = "0123456789ABCDEF0123456789ABCDEF"


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    made = []
    for index in range(2):
        image = tmp_path_factory.mktemp("wait") / f"vol{index}.img"
        made.append((image, globalhb.make_volume(image)))
    return made


@pytest.fixture
def machine(make_sim: Callable[..., SimKernel]) -> SimKernel:
    return make_sim()


@pytest.fixture
def later() -> Iterator[Callable[[float, Callable[[], object]], None]]:
    """later(seconds, action): run ``action`` in the background after a delay."""
    timers: list[threading.Timer] = []

    def schedule(delay: float, action: Callable[[], object]) -> None:
        timer = threading.Timer(delay, action)
        timers.append(timer)
        timer.start()

    yield schedule
    for timer in timers:
        timer.cancel()
        timer.join()


class FakeClock:
    """time.monotonic and time.sleep for a wait that must not take real time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_volume_that_appears_after_a_delay_is_found(
    machine: SimKernel, volumes: list[tuple[Path, str]],
    later: Callable[[float, Callable[[], object]], None],
) -> None:
    (first, uuid1), (second, uuid2) = volumes
    machine.add_volume("/dev/sdc", uuid1, image=first)
    later(0.6, lambda: machine.add_volume("/dev/sdd", uuid2, image=second))  # the iSCSI login
    began = time.monotonic()
    found = ocfs2disk.wait_for_devices(System(root=str(machine.root)), [uuid1, uuid2], 20)
    waited = time.monotonic() - began
    assert list(found) == [uuid1, uuid2]
    assert (found[uuid1].device, found[uuid2].device) == ("/dev/sdc", "/dev/sdd")
    assert 0.5 <= waited < 10


def test_the_map_coming_up_ends_the_wait_on_the_map(
    machine: SimKernel, volumes: list[tuple[Path, str]],
    later: Callable[[float, Callable[[], object]], None],
) -> None:
    image, uuid = volumes[0]
    machine.add_multipath(WWID, ("sdb", "sdc"), image, up=False)  # logged in, no map yet
    later(0.6, lambda: machine.add_multipath(WWID, ("sdb", "sdc"), image))
    found = ocfs2disk.wait_for_devices(System(root=str(machine.root)), [uuid], 20)
    assert found[uuid].device == "/dev/mapper/mpatha"


def test_a_volume_that_never_appears_fails_after_the_bound_naming_it(
    machine: SimKernel, volumes: list[tuple[Path, str]]
) -> None:
    image, uuid = volumes[0]
    machine.add_volume("/dev/sdc", uuid, image=image)
    began = time.monotonic()
    with pytest.raises(ocfs2disk.DeviceMissing) as caught:
        ocfs2disk.wait_for_devices(System(root=str(machine.root)), [uuid, ABSENT], 0.8)
    waited = time.monotonic() - began
    assert 0.8 <= waited < 5
    assert caught.value.message == (
        f"heartbeat region {ABSENT}: no block device holds this volume (waited 0.8 s)"
    )
    assert caught.value.exit_code == 1


def test_every_missing_volume_is_named_in_one_line(
    machine: SimKernel, volumes: list[tuple[Path, str]]
) -> None:
    image, uuid = volumes[0]
    machine.add_multipath(WWID, ("sdb", "sdc"), image, up=False)
    fake = FakeClock()
    with pytest.raises(ocfs2disk.DeviceMissing) as caught:
        ocfs2disk.wait_for_devices(System(root=str(machine.root)), [ABSENT, uuid], 2,
                                   clock=fake.clock, sleep=fake.sleep)
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith(f"heartbeat region {ABSENT}: no block device holds this volume; ")
    assert f"heartbeat region {uuid}: only multipath paths of WWID {WWID}" in message
    assert message.endswith("(waited 2 s)")


def test_the_bound_is_for_the_whole_wait_not_for_each_region(
    machine: SimKernel,
) -> None:
    fake = FakeClock()
    missing = [ABSENT, "F" * 32, "E" * 32]
    with pytest.raises(ocfs2disk.DeviceMissing):
        ocfs2disk.wait_for_devices(System(root=str(machine.root)), missing, 5, interval=1,
                                   clock=fake.clock, sleep=fake.sleep)
    assert fake.sleeps == [1, 1, 1, 1, 1]
    assert fake.now == 105


def test_no_wait_at_all_looks_once(machine: SimKernel) -> None:
    fake = FakeClock()
    with pytest.raises(ocfs2disk.DeviceMissing, match=r"\(waited 0 s\)"):
        ocfs2disk.wait_for_devices(System(root=str(machine.root)), [ABSENT], 0,
                                   clock=fake.clock, sleep=fake.sleep)
    assert fake.sleeps == []


def test_devices_already_there_need_no_wait(
    machine: SimKernel, volumes: list[tuple[Path, str]]
) -> None:
    image, uuid = volumes[0]
    machine.add_volume("/dev/nvme0n1", uuid, image=image)
    fake = FakeClock()
    found = ocfs2disk.wait_for_devices(System(root=str(machine.root)), [uuid], 30,
                                       clock=fake.clock, sleep=fake.sleep)
    assert found[uuid].device == "/dev/nvme0n1"
    assert fake.sleeps == []


def test_a_volume_that_cannot_carry_the_region_fails_at_once(
    machine: SimKernel, volumes: list[tuple[Path, str]]
) -> None:
    """A copy on a second disk: waiting would not tell which one is right."""
    image, uuid = volumes[0]
    machine.add_block_device("vdb", image, attributes={"serial": "one"})
    machine.add_block_device("vdc", image, attributes={"serial": "two"})
    fake = FakeClock()
    with pytest.raises(ocfs2disk.DiskError, match="/dev/vdb, /dev/vdc all carry it") as caught:
        ocfs2disk.wait_for_devices(System(root=str(machine.root)), [uuid], 30,
                                   clock=fake.clock, sleep=fake.sleep)
    assert not isinstance(caught.value, ocfs2disk.DeviceMissing)
    assert fake.sleeps == []


# -- the key that bounds it ---------------------------------------------------------------


def test_the_bound_is_a_config_key_of_thirty_seconds_by_default() -> None:
    option = config.OPTION_BY_KEY["O2CB_HEARTBEAT_DEVICE_TIMEOUT"]
    assert config.Settings("/etc/default/o2cb").heartbeat_device_timeout == 30
    assert option.parse("0") == 0
    assert option.parse("240") == 240
    with pytest.raises(ValueError, match="cannot be more than 240"):
        option.parse("241")
    with pytest.raises(ValueError, match="Invalid"):
        option.parse("-1")
    assert not option.asked
    assert "O2CB_HEARTBEAT_DEVICE_TIMEOUT=30" in config.sample_text()
