"""The shared-storage boot bed: two booted Debian 12 nodes on one iSCSI LUN, through multipath.

The storage array is Debian's userspace iSCSI target, tgtd, on this
machine's loopback, exporting one LUN (a file in the run directory, made
with mkfs.ocfs2 --global-heartbeat) through two portals.  The first portal
is tgtd's own; the second reaches tgtd's other portal through a proxy here
(Portal), so that the bed can take that portal away under the mounted
volume, as a dead target port or a pulled cable would, and bring it back.
The guests reach both through qemu's user network, where 10.0.2.2 is this
machine's loopback, and each other through a qemu socket network on
loopback (o2net).  The host's Rendezvous, on loopback too, lets the
guests' drivers (guest/storage-driver) take turns, and takes the portal
away when node A asks.

Each node is the boot bed's Debian image with open-iscsi and
multipath-tools added (a base tarball of its own, cached like the bed's),
our .deb, a global-heartbeat cluster whose region and volume are on
/dev/mapper/mpatha, and Debian's fstab line for it.  Their journals are
read from their disk images once they have powered off.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bootbed import image, machine

PACKAGES = (*image.PACKAGES, "open-iscsi", "multipath-tools")
IQN = "iqn.2026-12.test.o2cb:shared"
CLUSTER = "ocfs2"
NODES = {"a": ("nodea", "10.0.3.1", 0), "b": ("nodeb", "10.0.3.2", 1)}
MACS = {"a": ("52:54:00:12:00:01", "52:54:00:03:00:01"),
        "b": ("52:54:00:12:00:02", "52:54:00:03:00:02")}
THRESHOLD = 7  # o2hb: (7 - 1) * 2 s = 12 s of silence makes a node dead
DEAD_SECONDS = (THRESHOLD - 1) * 2
REPLACEMENT_TIMEOUT = 5  # seconds an iSCSI session may be in recovery before its I/O fails
LUN_SIZE = 300 << 20
MAP = "/dev/mapper/mpatha"
BOOT_TIMEOUT = 1200  # both nodes' whole run, under emulation on a loaded machine
GUEST_DIR = Path(__file__).resolve().parent / "guest"

CONFIG = f"""\
O2CB_ENABLED=true
O2CB_STACK=o2cb
O2CB_BOOTCLUSTER={CLUSTER}
O2CB_HEARTBEAT_THRESHOLD={THRESHOLD}
O2CB_IDLE_TIMEOUT_MS=30000
O2CB_KEEPALIVE_DELAY_MS=2000
O2CB_RECONNECT_DELAY_MS=2000
"""

FSTAB = f"""\
/dev/vda / ext4 defaults 0 1
{MAP} /srv ocfs2 _netdev,x-systemd.requires=o2cb.service 0 0
"""

# Every SCSI disk is a path of a map, named mpatha, mpathb...; the virtio
# disks (root, results) are not SAN disks.
MULTIPATH_CONF = """\
defaults {
\tuser_friendly_names yes
\tfind_multipaths no
}
blacklist {
\tdevnode "^vd[a-z]"
}
"""


def cluster_conf(uuid: str) -> str:
    text = f"cluster:\n\tnode_count = 2\n\theartbeat_mode = global\n\tname = {CLUSTER}\n"
    for name, address, number in NODES.values():
        text += (f"\nnode:\n\tip_port = 7777\n\tip_address = {address}\n"
                 f"\tnumber = {number}\n\tname = {name}\n\tcluster = {CLUSTER}\n")
    return text + f"\nheartbeat:\n\tregion = {uuid}\n\tcluster = {CLUSTER}\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, read from /proc without connecting."""
    wanted = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(line.split()[1] == wanted and line.split()[3] == "0A" for line in lines)


def wait_listening(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not listening(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds:.0f} s")
        time.sleep(0.2)


# -- the storage array --------------------------------------------------------------------


class Portal:
    """A TCP port that forwards to tgtd's second portal, and can be taken away."""

    def __init__(self, port: int, target: int) -> None:
        self.port, self.target = port, target
        self.lock = threading.Lock()
        self.links: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # taken away
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.links += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def take_away(self) -> None:
        """Refuse new connections and reset the open ones, as a dead port does."""
        if self.listener is not None:
            # shutdown wakes the accept() of _accept; close alone would not,
            # and the port would go on listening.
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        with self.lock:
            links, self.links = self.links, []
        for link in links:
            with contextlib.suppress(OSError):
                # A reset, not an orderly close: linger on, for 0 s.
                link.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                link.close()

    def close(self) -> None:
        self.take_away()


class Target:
    """tgtd on loopback, one LUN, two portals: ``ports`` are what the guests dial."""

    def __init__(self, workdir: Path, lun: Path) -> None:
        self.workdir, self.lun = workdir, lun
        self.control = 200 + os.getpid() % 700  # tgtd's management socket number
        self.ports = (free_port(), free_port())
        self.inner = free_port()  # tgtd's second portal, behind the Portal
        self.portal = Portal(self.ports[1], self.inner)
        self.process: subprocess.Popen[bytes] | None = None

    def tgtadm(self, *args: str) -> str:
        done = subprocess.run(["tgtadm", "-C", str(self.control), "--lld", "iscsi", *args],
                              capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"tgtadm {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        log = open(self.workdir / "tgtd.log", "wb")  # noqa: SIM115 (kept open for tgtd)
        self.process = subprocess.Popen(
            ["tgtd", "-f", "-C", str(self.control),
             "--iscsi", f"portal=127.0.0.1:{self.ports[0]}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        wait_listening(self.ports[0])
        self.tgtadm("--op", "new", "--mode", "portal", "--param", f"portal=127.0.0.1:{self.inner}")
        self.tgtadm("--op", "new", "--mode", "target", "--tid", "1", "-T", IQN)
        self.tgtadm("--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1",
                    "-b", str(self.lun))
        self.tgtadm("--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL")
        self.portal.open()

    def stop(self) -> None:
        self.portal.close()
        if self.process is not None:
            self.process.kill()  # tgtd leaves on SIGKILL only, or tgtadm with no targets
            self.process.wait(timeout=30)
            self.process = None


# -- the host's rendezvous ----------------------------------------------------------------


class Rendezvous:
    """The guests' one-line requests: set KEY, wait KEY, drop-portal, restore-portal."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.port = free_port()
        self.keys: set[str] = set()
        self.changed = threading.Condition()
        self.events: list[tuple[float, str]] = []
        self.started = time.monotonic()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()

    def log(self, text: str) -> None:
        self.events.append((time.monotonic() - self.started, text))

    def set(self, key: str) -> None:
        with self.changed:
            self.keys.add(key)
            self.changed.notify_all()

    def _serve(self) -> None:
        while True:
            try:
                link, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(link,), daemon=True).start()

    def _answer(self, link: socket.socket) -> None:
        with link:
            request = link.makefile().readline().split()
            verb, key = (request + ["", ""])[:2]
            try:
                answer = self._carry_out(verb, key)
            except OSError as error:
                answer = f"error: {error}"
            self.log(f"{verb} {key}: {answer}")
            with contextlib.suppress(OSError):
                link.sendall(answer.encode() + b"\n")

    def _carry_out(self, verb: str, key: str) -> str:
        if verb == "set":
            self.set(key)
        elif verb == "wait":
            with self.changed:
                if not self.changed.wait_for(lambda: key in self.keys, BOOT_TIMEOUT):
                    return "timeout"
        elif verb == "drop-portal":
            self.target.portal.take_away()
        elif verb == "restore-portal":
            self.target.portal.open()
        else:
            return "unknown request"
        return "ok"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


# -- the nodes' disks -----------------------------------------------------------------------


def make_lun(path: Path) -> str:
    """The LUN's backing file, a global-heartbeat OCFS2 volume; its UUID."""
    from o2cb_init import ocfs2disk

    with open(path, "wb") as handle:
        handle.truncate(LUN_SIZE)
    subprocess.run(
        ["mkfs.ocfs2", "-q", "-F", "-N", "2", "-b", "4K", "-C", "4K", "-J", "size=8M",
         "-L", "shared", "--cluster-stack=o2cb", f"--cluster-name={CLUSTER}",
         "--global-heartbeat", str(path)],
        check=True, capture_output=True,
    )
    return ocfs2disk.read_superblock(str(path)).uuid


def prepare_root(root: Path, deb: Path, uuid: str, ports: tuple[int, int], rendezvous: int) -> None:
    """The image both nodes boot; what differs between them is written per node afterwards."""
    install = image.install_file
    subprocess.run(["tar", "-C", str(root), "-xf", str(image.base_tarball(PACKAGES))], check=True)
    install(root, "/etc/hostname", "nodea\n")
    install(root, "/etc/hosts", "127.0.0.1 localhost\n")
    install(root, "/etc/fstab", FSTAB)
    install(root, "/etc/ocfs2/cluster.conf", cluster_conf(uuid))
    install(root, "/etc/default/o2cb", CONFIG)
    install(root, "/etc/multipath.conf", MULTIPATH_CONF)
    install(root, "/etc/bootbed/role", "a\n")
    install(root, "/etc/bootbed/rendezvous", f"{rendezvous}\n")
    install(root, "/etc/iscsi/initiatorname.iscsi", "InitiatorName=iqn.2026-12.test.o2cb:nodea\n")
    for role, (_, address, _) in NODES.items():
        user_mac, cluster_mac = MACS[role]
        install(root, f"/etc/systemd/network/10-user-{role}.network",
                f"[Match]\nMACAddress={user_mac}\n\n[Network]\nDHCP=ipv4\n")
        install(root, f"/etc/systemd/network/20-cluster-{role}.network",
                f"[Match]\nMACAddress={cluster_mac}\n\n[Network]\nAddress={address}/24\n")
    # Log in to both portals at boot, and fail a dead path's I/O after 5 s
    # rather than open-iscsi's 120: o2hb's writes must not wait on it longer
    # than its dead threshold (12 s here), or the node fences itself.
    conf = root / "etc/iscsi/iscsid.conf"
    text = conf.read_text()
    text = text.replace("\nnode.startup = manual", "\nnode.startup = automatic")
    text = text.replace("node.session.timeo.replacement_timeout = 120",
                        f"node.session.timeo.replacement_timeout = {REPLACEMENT_TIMEOUT}")
    conf.write_text(text)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    # The node records, as discovery would make them but for the address:
    # tgtd would announce its own, 127.0.0.1.  `-o new` takes none of
    # iscsid.conf's node settings: they are set on each record too.
    settings = {"node.startup": "automatic", "node.conn[0].startup": "automatic",
                "node.session.timeo.replacement_timeout": str(REPLACEMENT_TIMEOUT)}
    for port in ports:
        node = ["chroot", str(root), "iscsiadm", "-m", "node", "-T", IQN, "-p", f"10.0.2.2:{port}"]
        subprocess.run([*node, "-o", "new"], check=True, capture_output=True, env=env)
        for name, value in settings.items():
            subprocess.run([*node, "-o", "update", "-n", name, "-v", value],
                           check=True, capture_output=True, env=env)
    (root / "var/log/journal").mkdir(parents=True, exist_ok=True)
    (root / "srv").mkdir(exist_ok=True)
    (root / "etc/systemd/system/ocfs2.service").symlink_to("/dev/null")  # as in the boot bed
    subprocess.run(["chroot", str(root), "passwd", "-d", "root"], check=True,
                   stdout=subprocess.DEVNULL)
    install(root, "/usr/local/sbin/storage-driver",
            (GUEST_DIR / "storage-driver").read_text(), 0o755)
    install(root, "/etc/systemd/system/storage-driver.service",
            (GUEST_DIR / "storage-driver.service").read_text())
    shutil.copy(deb, root / "tmp" / deb.name)
    subprocess.run(["chroot", str(root), "dpkg", "-i", f"/tmp/{deb.name}"],
                   check=True, capture_output=True, env=env)
    (root / "tmp" / deb.name).unlink()
    subprocess.run(["chroot", str(root), "systemctl", "enable", "systemd-networkd.service",
                    "systemd-networkd-wait-online.service", "storage-driver.service"],
                   check=True, capture_output=True, env=env)


def build(workdir: Path, deb: Path, uuid: str, ports: tuple[int, int], rendezvous: int) -> None:
    """disk-a.img, disk-b.img, vmlinuz and initrd.img in ``workdir``."""
    root = Path(tempfile.mkdtemp(prefix="root-", dir=workdir))
    try:
        prepare_root(root, deb, uuid, ports, rendezvous)
        image.kernel_files(root, workdir)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(workdir / "disk-a.img"),
                        image.ROOT_SIZE], check=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    disk_b = workdir / "disk-b.img"
    subprocess.run(["cp", "--sparse=always", str(workdir / "disk-a.img"), str(disk_b)], check=True)
    image.replace_file(disk_b, "/etc/hostname", "nodeb\n")
    image.replace_file(disk_b, "/etc/bootbed/role", "b\n")
    image.replace_file(disk_b, "/etc/iscsi/initiatorname.iscsi",
                       "InitiatorName=iqn.2026-12.test.o2cb:nodeb\n")


def journal(disk: Path, into: Path) -> str:
    """The persistent journal in a powered-off node's image, in monotonic time order per boot."""
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["debugfs", "-R", f"rdump /var/log/journal {into}", str(disk)],
                   check=True, capture_output=True)
    done = subprocess.run(
        ["journalctl", "-D", str(into / "journal"), "--no-pager", "-o", "short-monotonic"],
        capture_output=True, text=True, check=False,
    )
    return done.stdout + done.stderr


# -- booting the pair -----------------------------------------------------------------------


@dataclass
class Node:
    role: str
    console: str = ""
    seconds: float = 0.0
    exit_code: int | None = None
    files: dict[str, str] = field(default_factory=dict)
    journal: str = ""

    def out(self, name: str) -> str:
        return self.files.get(name + ".out", f"<{name} not recorded>")

    def rc(self, name: str) -> int | None:
        text = self.files.get(name + ".rc")
        return int(text) if text is not None else None


def qemu_command(workdir: Path, role: str, cluster_port: int) -> list[str]:
    user_mac, cluster_mac = MACS[role]
    how = "listen" if role == "a" else "connect"
    return [
        "qemu-system-x86_64", "-accel", os.environ.get("O2CB_QEMU_ACCEL", "tcg"),
        *machine.BARE_MACHINE, "-m", "1024", "-smp", "1", "-no-reboot",
        "-kernel", str(workdir / "vmlinuz"), "-initrd", str(workdir / "initrd.img"),
        # panic=-1: a node that fences itself reboots, and -no-reboot ends its qemu.
        "-append", "root=/dev/vda rw console=ttyS0 panic=-1",
        "-drive", f"file={workdir / f'disk-{role}.img'},format=raw,if=virtio",
        "-drive", f"file={workdir / f'results-{role}.img'},format=raw,if=virtio",
        "-netdev", "user,id=u0", "-device", f"virtio-net-pci,netdev=u0,mac={user_mac}",
        "-netdev", f"socket,id=c0,{how}=127.0.0.1:{cluster_port}",
        "-device", f"virtio-net-pci,netdev=c0,mac={cluster_mac}",
    ]


def read_results(path: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    try:
        with tarfile.open(path) as archive:
            for member in archive.getmembers():
                extracted = archive.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    text = extracted.read().decode(errors="replace")
                    files[member.name.removeprefix("./")] = text
    except tarfile.ReadError:
        pass  # the driver never wrote them: the console tells why
    return files


def run_pair(workdir: Path, rendezvous: Rendezvous) -> dict[str, Node]:
    """Boot A, then B on A's cluster network; both power themselves off."""
    cluster_port = free_port()
    nodes = {role: Node(role) for role in NODES}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    started: dict[str, float] = {}
    try:
        for role in NODES:
            results = workdir / f"results-{role}.img"
            with open(results, "wb") as handle:
                handle.truncate(16 << 20)
            console = open(workdir / f"console-{role}.log", "wb")  # noqa: SIM115
            started[role] = time.monotonic()
            processes[role] = subprocess.Popen(
                qemu_command(workdir, role, cluster_port),
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
            )
            rendezvous.log(f"{role} booting")
            if role == "a":
                wait_listening(cluster_port)
        deadline = time.monotonic() + BOOT_TIMEOUT
        waiting = dict(processes)
        while waiting and time.monotonic() < deadline:
            for role, process in list(waiting.items()):
                if process.poll() is not None:
                    nodes[role].exit_code = process.returncode
                    nodes[role].seconds = time.monotonic() - started[role]
                    rendezvous.log(f"{role} powered off")
                    if role == "b":
                        rendezvous.set("b-gone")
                    del waiting[role]
            time.sleep(1)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=60)
    for role, node in nodes.items():
        node.console = (workdir / f"console-{role}.log").read_text(errors="replace")
        node.files = read_results(workdir / f"results-{role}.img")
        node.journal = journal(workdir / f"disk-{role}.img", workdir / f"journal-{role}")
    return nodes


def missing_prerequisites() -> list[str]:
    missing = machine.missing_prerequisites()
    for program in ("tgtd", "tgtadm", "journalctl"):
        if shutil.which(program) is None:
            missing.append(f"{program} not installed")
    return missing
