"""Disk images for the boot bed.

The base system comes from Debian's archive through mmdebstrap and is cached
as a tarball under ``${O2CB_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/o2cb}``,
named after a hash of what goes into it, so a changed package list builds a
new one.  Each run unpacks it, installs our .deb with dpkg in a chroot, adds
the scenario files, and makes an ext4 image of the tree (``mkfs.ext4 -d``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SUITE = "bookworm"
VARIANT = "minbase"
PACKAGES = (
    "systemd-sysv",
    "udev",
    "linux-image-amd64",
    "initramfs-tools",
    "ocfs2-tools",
    "python3-click",
    "python3-configobj",
    "python3-psutil",
    "kmod",
    "iproute2",
    "util-linux",
)
HOSTNAME = "bednode"
ROOT_SIZE = "3G"
GUEST_DIR = Path(__file__).resolve().parent / "guest"


def cache_dir() -> Path:
    explicit = os.environ.get("O2CB_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "o2cb"


def base_key(packages: tuple[str, ...] = PACKAGES) -> str:
    recipe = "\n".join([SUITE, VARIANT, *sorted(packages)])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def base_path(packages: tuple[str, ...] = PACKAGES) -> Path:
    return cache_dir() / f"debian-{SUITE}-{base_key(packages)}.tar"


def base_tarball(packages: tuple[str, ...] = PACKAGES) -> Path:
    """The cached base system, built with mmdebstrap when missing (about a minute)."""
    target = base_path(packages)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.tar")
    subprocess.run(
        [
            "mmdebstrap", "--quiet", f"--variant={VARIANT}",
            "--include=" + ",".join(packages), SUITE, str(partial),
        ],
        check=True,
    )
    partial.rename(target)
    return target


def install_file(root: Path, path: str, text: str, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


CLUSTER_CONF = f"""\
node:
\tip_port = 7777
\tip_address = 127.0.0.1
\tnumber = 0
\tname = {HOSTNAME}
\tcluster = ocfs2

node:
\tip_port = 7777
\tip_address = 10.0.0.2
\tnumber = 1
\tname = peer
\tcluster = ocfs2

cluster:
\tnode_count = 2
\tname = ocfs2
"""

GOOD_CONFIG = """\
O2CB_ENABLED=true
O2CB_STACK=o2cb
O2CB_BOOTCLUSTER=ocfs2
O2CB_HEARTBEAT_THRESHOLD=31
O2CB_IDLE_TIMEOUT_MS=30000
O2CB_KEEPALIVE_DELAY_MS=2000
O2CB_RECONNECT_DELAY_MS=2000
"""

# Debian's README.Debian line for an OCFS2 volume, with the bed's device.
FSTAB = """\
/dev/vda / ext4 defaults 0 1
/dev/vdb /srv ocfs2 _netdev,x-systemd.requires=o2cb.service 0 0
"""


def prepare_root(root: Path, deb: Path) -> None:
    """Unpack the base system into ``root`` and make it the bed's machine."""
    subprocess.run(["tar", "-C", str(root), "-xf", str(base_tarball())], check=True)
    install_file(root, "/etc/hostname", HOSTNAME + "\n")
    install_file(root, "/etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 {HOSTNAME}\n")
    install_file(root, "/etc/fstab", FSTAB)
    install_file(root, "/etc/ocfs2/cluster.conf", CLUSTER_CONF)
    install_file(root, "/etc/default/o2cb", GOOD_CONFIG)
    install_file(root, "/etc/bootbed/o2cb.good", GOOD_CONFIG)
    install_file(root, "/etc/bootbed/phase", "ours\n")
    (root / "var/log/journal").mkdir(parents=True, exist_ok=True)
    (root / "srv").mkdir(exist_ok=True)
    # ocfs2-tools' ocfs2.service runs `mount -a -t ocfs2` after o2cb even when
    # o2cb failed, and mount.ocfs2 then loads the OCFS2 modules itself.  On
    # systemd the fstab line's mount unit does that job; masked, the modules
    # a boot shows are the ones o2cb loaded.  Both bed boots mask it.
    (root / "etc/systemd/system/ocfs2.service").symlink_to("/dev/null")
    # root without a password on the console, in case someone watches a boot.
    subprocess.run(["chroot", str(root), "passwd", "-d", "root"], check=True,
                   stdout=subprocess.DEVNULL)
    install_file(root, "/usr/local/sbin/bed-driver",
                 (GUEST_DIR / "bed-driver").read_text(), 0o755)
    install_file(root, "/etc/systemd/system/bed-driver.service",
                 (GUEST_DIR / "bed-driver.service").read_text())
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "bed-driver.service").symlink_to("/etc/systemd/system/bed-driver.service")
    # As an administrator installs it: dpkg inside the machine's own root.
    shutil.copy(deb, root / "tmp" / deb.name)
    subprocess.run(
        ["chroot", str(root), "dpkg", "-i", f"/tmp/{deb.name}"],
        check=True, capture_output=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    (root / "tmp" / deb.name).unlink()


def kernel_files(root: Path, into: Path) -> tuple[Path, Path]:
    """Copy Debian's kernel and initramfs out of the image's /boot."""
    vmlinuz = sorted((root / "boot").glob("vmlinuz-*"))[-1]
    version = vmlinuz.name[len("vmlinuz-"):]
    initrd = root / "boot" / f"initrd.img-{version}"
    shutil.copy(vmlinuz, into / "vmlinuz")
    shutil.copy(initrd, into / "initrd.img")
    return into / "vmlinuz", into / "initrd.img"


def build(workdir: Path, deb: Path) -> tuple[Path, Path, Path]:
    """disk.img (the machine), vmlinuz and initrd.img in ``workdir``."""
    root = Path(tempfile.mkdtemp(prefix="root-", dir=workdir))
    try:
        prepare_root(root, deb)
        vmlinuz, initrd = kernel_files(root, workdir)
        disk = workdir / "disk.img"
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-d", str(root), str(disk), ROOT_SIZE], check=True
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return disk, vmlinuz, initrd


def make_volume(path: Path) -> None:
    """A raw OCFS2 volume for the o2cb stack's cluster "ocfs2"."""
    with open(path, "wb") as handle:
        handle.truncate(256 * 1024 * 1024)
    subprocess.run(
        [
            "mkfs.ocfs2", "-q", "-F", "-N", "2", "-b", "4K", "-C", "4K", "-J", "size=8M",
            "-L", "bedvol", "--cluster-stack=o2cb", "--cluster-name=ocfs2", str(path),
        ],
        check=True, capture_output=True,
    )


def replace_file(disk: Path, path: str, text: str) -> None:
    """Write ``path`` inside the powered-off ext4 image (debugfs, no mount)."""
    with tempfile.NamedTemporaryFile("w", delete=False) as handle:
        handle.write(text)
        local = handle.name
    try:
        commands = f"rm {path}\nwrite {local} {path}\nsif {path} mode 0100644\n"
        subprocess.run(
            ["debugfs", "-w", "-f", "-", str(disk)],
            input=commands, text=True, check=True, capture_output=True,
        )
    finally:
        os.unlink(local)
