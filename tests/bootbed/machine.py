"""Boot the bed's disk image under qemu and read back what the guest recorded."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BOOT_TIMEOUT = 420


@dataclass
class Boot:
    """One boot: the console transcript and the files the guest's driver wrote."""

    phase: str
    console: str
    seconds: float
    files: dict[str, str] = field(default_factory=dict)

    def out(self, name: str) -> str:
        return self.files.get(name + ".out", f"<{name} not recorded>")

    def rc(self, name: str) -> int | None:
        text = self.files.get(name + ".rc")
        return int(text) if text is not None else None

    def text(self, name: str) -> str:
        return self.files.get(name, f"<{name} not recorded>")


# A PC without its legacy devices.  qemu's default machine (i440fx) has a
# floppy drive, which Debian's kernel registers as fd0 with no disk in it:
# every scan of all block devices then reads it and fails only after the
# floppy driver's retries (umount.ocfs2 finds its heartbeat device so, and a
# global heartbeat start scans for its regions).  Its VGA, parallel port and
# CD-ROM cost module loads and udev work on every boot.  q35 has no floppy
# controller; -nodefaults leaves the rest out.  The serial port is the console.
BARE_MACHINE = ["-machine", "q35", "-nodefaults", "-display", "none", "-serial", "stdio"]


def qemu_command(workdir: Path, results: Path) -> list[str]:
    # TCG unless told otherwise: a /dev/kvm that opens is no proof that KVM
    # runs (nested virtualisation), and a guest that never starts says nothing.
    accel = ["-accel", os.environ.get("O2CB_QEMU_ACCEL", "tcg")]
    return [
        "qemu-system-x86_64", *accel, *BARE_MACHINE, "-m", "1024", "-smp", "2",
        "-no-reboot",
        "-kernel", str(workdir / "vmlinuz"), "-initrd", str(workdir / "initrd.img"),
        "-append", "root=/dev/vda rw console=ttyS0 panic=-1",
        "-drive", f"file={workdir / 'disk.img'},format=raw,if=virtio",
        "-drive", f"file={workdir / 'vol.img'},format=raw,if=virtio",
        "-drive", f"file={results},format=raw,if=virtio",
    ]


def boot(workdir: Path, label: str) -> Boot:
    """Boot once; the guest's driver powers the machine off when done."""
    results = workdir / f"results-{label}.img"
    with open(results, "wb") as handle:
        handle.truncate(16 * 1024 * 1024)
    started = time.monotonic()
    try:
        completed = subprocess.run(
            qemu_command(workdir, results),
            stdin=subprocess.DEVNULL, capture_output=True, timeout=BOOT_TIMEOUT,
        )
        console = completed.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as expired:
        console = (expired.stdout or b"").decode(errors="replace")
        console += f"\n<qemu killed after {BOOT_TIMEOUT} s>"
    seconds = time.monotonic() - started
    (workdir / f"console-{label}.log").write_text(console)
    files: dict[str, str] = {}
    try:
        with tarfile.open(results) as archive:
            for member in archive.getmembers():
                if member.isfile():
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        name = member.name.removeprefix("./")
                        files[name] = extracted.read().decode(errors="replace")
    except tarfile.ReadError:
        pass  # the driver never ran: the assertions show the console instead
    return Boot(files.get("phase", "<none>").strip(), console, seconds, files)


def missing_prerequisites() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("not root (chroot, dpkg and mkfs need it)")
    for program in (
        "mmdebstrap", "qemu-system-x86_64", "mkfs.ext4", "debugfs", "mkfs.ocfs2",
        "dpkg-buildpackage", "dh", "chroot",
    ):
        if shutil.which(program) is None:
            missing.append(f"{program} not installed")
    if not Path("/usr/share/perl5/Debian/Debhelper/Buildsystem/pybuild.pm").exists():
        missing.append("dh-python not installed")
    return missing
