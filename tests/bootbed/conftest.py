"""The boot bed's machine, booted three times per session and shared by the tests.

Boot "ours": our package installed, a good config: scenarios 1, 2 and 5 run,
then the driver powers off with the fstab volume mounted (scenario 3).
The host then writes a broken /etc/default/o2cb into the image.
Boot "broken": scenario 3 read from the previous boot's journal, scenario 4,
then ``dpkg -r o2cb-init`` (scenario 5) and the good config back.
Boot "reference": ocfs2-tools' own script, scenario 6.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from realkernel.harness import skip_or_fail  # noqa: E402

from bootbed import image, machine, sharedstorage  # noqa: E402

REPO = Path(__file__).resolve().parent.parent.parent
BROKEN_CONFIG = image.GOOD_CONFIG.replace(
    "O2CB_HEARTBEAT_THRESHOLD=31", "O2CB_HEARTBEAT_THRESHOLD=3"
)
TIMINGS: list[str] = []


def require_bed() -> None:
    skip_or_fail("boot bed", machine.missing_prerequisites(), ".ci/install-bootbed")


def _timed(label: str, started: float) -> None:
    TIMINGS.append(f"{label}: {time.monotonic() - started:.0f} s")


def _fresh_workdir(name: str) -> Path:
    """Beside the cached base image, emptied at each run and kept afterwards:
    the consoles and recorded files of the last run are there to read."""
    workdir = image.cache_dir() / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    return workdir


def _built_deb(label: str) -> Path:
    """The package built from this tree, as users install it."""
    started = time.monotonic()
    subprocess.run(["make", "-s", "deb"], cwd=REPO, check=True, capture_output=True)
    deb = sorted((REPO / "dist").glob("o2cb-init_*_all.deb"))[-1]
    _timed(label, started)
    return deb


@pytest.fixture(scope="session")
def bed() -> Iterator[dict[str, machine.Boot]]:
    require_bed()
    workdir = _fresh_workdir("bootbed-run")
    total = time.monotonic()
    deb = _built_deb("make deb")

    started = time.monotonic()
    cached = image.base_path().exists()
    image.base_tarball()
    _timed("base image (" + ("cached" if cached else "mmdebstrap") + ")", started)

    started = time.monotonic()
    image.build(workdir, deb)
    image.make_volume(workdir / "vol.img")
    _timed("disk image with the .deb", started)

    boots: dict[str, machine.Boot] = {}
    for label in ("ours", "broken", "reference"):
        if label == "broken":
            image.replace_file(workdir / "disk.img", "/etc/default/o2cb", BROKEN_CONFIG)
        started = time.monotonic()
        boots[label] = machine.boot(workdir, label)
        _timed(f"boot {label}", started)
    _timed("boot bed total", total)
    yield boots


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.write_sep("-", "boot bed wall time")
        for line in TIMINGS:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def shared_storage() -> Iterator[dict[str, sharedstorage.Node]]:
    """The shared-storage bed's two nodes, booted once and powered off (sharedstorage.py)."""
    skip_or_fail("shared-storage bed", sharedstorage.missing_prerequisites(),
                 ".ci/install-bootbed")
    workdir = _fresh_workdir("sharedstorage-run")
    total = time.monotonic()
    deb = _built_deb("shared storage: make deb")

    started = time.monotonic()
    cached = image.base_path(sharedstorage.PACKAGES).exists()
    image.base_tarball(sharedstorage.PACKAGES)
    _timed("shared storage: base image (" + ("cached" if cached else "mmdebstrap") + ")", started)

    target = sharedstorage.Target(workdir, workdir / "lun.img")
    rendezvous = sharedstorage.Rendezvous(target)
    try:
        started = time.monotonic()
        uuid = sharedstorage.make_lun(target.lun)
        sharedstorage.build(workdir, deb, uuid, target.ports, rendezvous.port)
        _timed("shared storage: LUN and the nodes' disks", started)
        target.start()
        started = time.monotonic()
        nodes = sharedstorage.run_pair(workdir, rendezvous)
        _timed("shared storage: both nodes, boot to poweroff", started)
    finally:
        rendezvous.close()
        target.stop()
    (workdir / "events.log").write_text(
        "".join(f"{at:7.1f} s  {text}\n" for at, text in rendezvous.events))
    _timed("shared storage total", total)
    yield nodes
