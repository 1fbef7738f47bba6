"""The `check` verb: what would stop the cluster or trouble it, each with what to do.

It reads the configuration and the machine and changes nothing.  Each
check gives one or more findings; a problem is a finding that is not ok.
What a user cannot read without root (another user's sockets, a block
device) is passed over, not reported.  `start` runs the cheap ones first
(``preflight``): their warnings go to stderr, and a port that another
process holds fails it before anything loads.

Exit codes: 0 nothing to report, 1 problems, 6 the configuration file or
cluster.conf missing or invalid (with the message start gives).
"""

from __future__ import annotations

from collections.abc import Callable

from . import clusterconf, listeners
from .clusterconf import ClusterConf, NodeConf
from .context import Context
from .errors import ConfigError, ExitCode, O2cbError
from .records import dataclass
from .system import System

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .parts.dlm_controld import DlmControld

JSON_VERSION = 1
LAYOUT_STACKS = ("o2cb", "heartbeat2")  # the stacks whose cluster is built from cluster.conf
PANIC_ON_OOPS = "/proc/sys/kernel/panic_on_oops"
PANIC = "/proc/sys/kernel/panic"
RESTART_FIX = ("restart the cluster on this node (o2cb.init restart) once no volume is"
               " mounted, and on the other nodes as well")


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    message: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.check}: {self.message}" + (f"; {self.fix}" if self.fix else "")

    def as_data(self) -> dict[str, object]:
        return {"check": self.check, "ok": self.ok, "message": self.message, "fix": self.fix}


class Checks:
    """The findings of one run, for one cluster of one configuration."""

    def __init__(self, context: Context, cluster: str) -> None:
        self.context = context
        self.system: System = context.system
        self.cluster = cluster
        self.findings: list[Finding] = []
        self.invalid = False  # cluster.conf missing or invalid: exit 6

    def ok(self, check: str, message: str) -> None:
        self.findings.append(Finding(check, True, message))

    def problem(self, check: str, message: str, fix: str) -> None:
        self.findings.append(Finding(check, False, message, fix))

    # -- cluster.conf and this host ---------------------------------------------

    def layout(self) -> ClusterConf | None:
        try:
            clusters = clusterconf.load(self.system)
        except ConfigError as error:
            self.invalid = True
            self.problem("cluster.conf", error.message,
                         f"correct {clusterconf.CLUSTER_CONF} (o2cb.init configure, o2cb tool)")
            return None
        if self.cluster not in clusters:
            self.invalid = True
            self.problem("cluster.conf",
                         f"Cluster {self.cluster} is not defined in {clusterconf.CLUSTER_CONF}",
                         "add its cluster: stanza, or set O2CB_BOOTCLUSTER to a cluster it defines")
            return None
        self.ok("cluster.conf", f"cluster {self.cluster} defined in {clusterconf.CLUSTER_CONF}")
        return clusters[self.cluster]

    def local_node(self, layout: ClusterConf) -> NodeConf | None:
        hostname = self.system.hostname()
        node = layout.local_node(hostname)
        if node is None:
            self.problem("node", f"This node ({hostname}) is not a node of cluster {layout.name}"
                         f" in {clusterconf.CLUSTER_CONF}",
                         f"add a node named {hostname} to cluster.conf on every node")
        else:
            self.ok("node", f"this host is node {node.name} (number {node.number})")
        return node

    def address(self, node: NodeConf) -> None:
        addresses = self.system.local_addresses()
        if addresses is None:
            return  # this machine's interfaces cannot be read
        if node.ip_address in addresses:
            self.ok("address", f"{node.ip_address} is an address of this host")
            return
        self.problem("address", f"node {node.name}'s address {node.ip_address} is on no"
                     " interface of this host",
                     "configure that address, or correct ip_address in cluster.conf on every node")

    def port(self, node: NodeConf, online: bool) -> None:
        where = f"{node.ip_address}:{node.ip_port}"
        if online:
            others = listeners.process_listeners(self.system, node.ip_address, node.ip_port)
            if others:
                self.problem("port", f"cluster port {where} is held by {', '.join(others)}",
                             "stop that program, or give the cluster another ip_port")
            elif not listeners.has_listener(self.system, node.ip_address, node.ip_port):
                self.problem("port", f"the cluster is online but nothing listens on {where}",
                             "restart the cluster on this node; see the kernel log (o2net)")
            else:
                self.ok("port", f"o2net listens on {where}")
            return
        taken = listeners.taken_by(self.system, node.ip_address, node.ip_port)
        if taken:
            self.problem("port", f"cluster port {where} is taken by {', '.join(taken)}",
                         "stop that program, or give the cluster another ip_port in"
                         " cluster.conf on every node")
        else:
            self.ok("port", f"cluster port {where} is free")

    # -- the kernel -------------------------------------------------------------

    def sysctl(self) -> None:
        oops = self.system.read_attribute(PANIC_ON_OOPS)
        if oops is not None and oops != "1":
            self.problem("panic_on_oops", f"kernel.panic_on_oops is {oops}: a node that oopses"
                         " hangs with its locks held instead of restarting",
                         "set kernel.panic_on_oops = 1 in /etc/sysctl.d/ and run sysctl --system")
        elif oops is not None:
            self.ok("panic_on_oops", "kernel.panic_on_oops is 1")
        panic = self.system.read_attribute(PANIC)
        if panic == "0":
            self.problem("panic", "kernel.panic is 0: a node that panics or fences never"
                         " restarts", "set kernel.panic = 30 in /etc/sysctl.d/ and run sysctl"
                         " --system")
        elif panic is not None:
            self.ok("panic", f"kernel.panic is {panic}")

    def devices(self, layout: ClusterConf) -> None:
        if layout.heartbeat_mode != "global":
            return
        from . import ocfs2disk

        for uuid in layout.heartbeat_regions:
            try:
                region = ocfs2disk.find_region(self.system, uuid)
            except ocfs2disk.DiskError as error:
                self.problem("heartbeat-device", error.message,
                             "attach the volume's device (iSCSI login, multipathd), or remove"
                             " the heartbeat: stanza from cluster.conf")
            except OSError:
                continue  # devices that cannot be read without root
            else:
                self.ok("heartbeat-device", f"heartbeat region {uuid.upper()} on {region.device}")

    # -- the running cluster -----------------------------------------------------

    def running(self, layout: ClusterConf, node: NodeConf | None) -> bool:
        """The differences between the running cluster and the files; True when online."""
        from .parts.drift import CONNECTED_NODES, LIVE_NODES, drift, node_numbers
        from .parts.o2nm import O2nmCluster

        o2nm = O2nmCluster(self.context)
        target = o2nm.cluster(self.cluster)
        if not target.exists():
            return False
        mounted = bool(self.context.kernel.mounts_of_type("ocfs2"))
        found = drift(o2nm, target, layout, mounted)
        for difference in found.differences:
            self.problem("running", f"running cluster {self.cluster}: {difference.text()}",
                         "run o2cb.init reload" if difference.online else RESTART_FIX)
        if not found:
            self.ok("running", f"running cluster {self.cluster} is as the files say")
        live = node_numbers(self.system, LIVE_NODES)
        connected = node_numbers(self.system, CONNECTED_NODES)
        if live is not None and connected is not None and node is not None:
            self.peers(layout, sorted(live - connected - {node.number}))
        local = next((n for n in target.nodes() if n.is_local), None)
        return local is not None

    def peers(self, layout: ClusterConf, unconnected: list[int]) -> None:
        """Each peer that heartbeats without an o2net connection, with the kernel's
        reason from its log (read only when there is such a peer)."""
        if not unconnected:
            return
        from . import kernellog

        log = kernellog.messages(self.system)
        names = {conf.number: conf.name for conf in layout.nodes}
        for number in unconnected:
            message = (f"node {names.get(number, number)} (number {number}) heartbeats but"
                       " o2net is not connected to it")
            reason = kernellog.o2net_refusal(log, number) if log is not None else None
            setting = kernellog.setting_behind(reason) if reason else None
            if reason:
                message += f" (the kernel log: {reason})"
            if setting:
                fix = (f"make {setting} the same on every node, then restart the cluster"
                       " on the node whose value differs")
            elif log is None:
                fix = (f"make the timeouts and the port the same on every node; the kernel"
                       f" log says why (o2net), but {kernellog.KMSG} could not be read: run"
                       " check as root")
            else:
                fix = ("make the timeouts and the port the same on every node, and check"
                       " the network between the nodes")
            self.problem("peer", message, fix)

    def daemons(self, parts: object) -> None:
        control = getattr(parts, "daemons", None)
        for daemon in getattr(control, "daemons", []):
            if daemon.locate() is None:
                self.problem("daemon", f"{daemon.name} is not installed (looked for"
                             f" {' and '.join(daemon.candidates())})",
                             f"install the package that provides {daemon.name}")
            else:
                self.ok("daemon", f"{daemon.name} is installed")

    def corosync(self, dlm: DlmControld) -> None:
        """pcmk on dlm_controld: corosync running, named as the boot cluster, quorate,
        and dlm_controld installed (start brings it up when nothing runs it)."""
        from . import corosync
        from .corosync import Quorum

        if not corosync.installed(self.system):
            self.problem("corosync", "corosync is not installed",
                         "install corosync and configure its cluster")
            return
        state = corosync.quorum(self.system)
        if state is Quorum.DOWN:
            self.problem("corosync", "corosync is not running",
                         "start corosync (systemctl start corosync)")
        else:
            name = corosync.cluster_name(self.system)
            if name != self.cluster:
                self.problem("corosync", f"corosync's cluster is {name!r}, not {self.cluster}",
                             "make totem.cluster_name in corosync.conf and O2CB_BOOTCLUSTER"
                             " the same")
            else:
                self.ok("corosync", f"corosync runs cluster {name}")
            if state is Quorum.QUORATE:
                self.ok("quorum", "corosync is quorate")
            else:
                self.problem("quorum", "corosync is not quorate",
                             "bring up enough nodes (corosync-quorumtool -s shows the votes)")
        if dlm.daemon.locate() is None:
            self.problem("daemon", "dlm_controld is not installed",
                         "install dlm-controld")
        elif dlm.is_running():
            self.ok("daemon", "dlm_controld is running")
        else:
            self.ok("daemon", "dlm_controld is installed; start brings it up")

    # -- all of them ---------------------------------------------------------------

    def run(self) -> None:
        self.sysctl()
        if self.context.settings.stack not in LAYOUT_STACKS:
            from .stacks import stack_for
            from .stacks.pcmk import PcmkParts

            parts = stack_for(self.context).parts
            if isinstance(parts, PcmkParts) and parts.uses_dlm_controld:
                self.corosync(parts.dlm)
            else:
                self.daemons(parts)
            return
        if not self.cluster:
            return
        layout = self.layout()
        if layout is None:
            return
        node = self.local_node(layout)
        online = self.running(layout, node)
        if node is not None:
            self.address(node)
            self.port(node, online)
        self.devices(layout)

    def exit_code(self) -> int:
        if self.invalid:
            return ExitCode.NOT_CONFIGURED
        return ExitCode.FAILURE if any(not f.ok for f in self.findings) else ExitCode.OK


def check(make_context: Callable[[], Context], cluster: str | None, as_json: bool,
          line: Callable[[str], None]) -> int:
    """Run every check and show the problems (all findings in --json)."""
    try:
        context = make_context()
    except ConfigError as error:
        found = [Finding("config", False, error.message,
                         "write the file with o2cb.init configure")]
        _show(found, as_json, line)
        return ExitCode.NOT_CONFIGURED
    checks = Checks(context, cluster or context.settings.bootcluster)
    checks.ok("config", f"{context.settings.path} is valid")
    try:
        checks.run()
    except O2cbError as error:
        checks.problem("stack", error.message, "correct O2CB_STACK in the configuration file")
        checks.invalid = checks.invalid or error.exit_code == ExitCode.NOT_CONFIGURED
    _show(checks.findings, as_json, line)
    return checks.exit_code()


def _show(found: list[Finding], as_json: bool, line: Callable[[str], None]) -> None:
    if as_json:
        import json

        data = {"version": JSON_VERSION, "findings": [f.as_data() for f in found]}
        line(json.dumps(data, indent=2))
        return
    problems = [finding for finding in found if not finding.ok]
    for finding in problems:
        line(finding.line())
    if not problems:
        line("No problems found")


# -- before start ----------------------------------------------------------------------


def preflight(context: Context, cluster: str, warn: Callable[[str], None]) -> None:
    """The cheap checks, before start changes anything: warnings on stderr, and a
    port taken by another process fails (exit 1) before anything loads.  A host
    that is no node was refused already (check_online, exit 6)."""
    if context.settings.stack not in LAYOUT_STACKS or not cluster:
        return
    checks = Checks(context, cluster)
    checks.sysctl()
    layout = checks.layout()
    node = checks.local_node(layout) if layout is not None else None
    if node is not None:
        from .parts.o2nm import O2nmCluster

        target = O2nmCluster(context).cluster(cluster)
        marked = target.exists() and any(n.is_local for n in target.nodes())
        if not marked:
            checks.port(node, online=False)
    for finding in checks.findings:
        if finding.ok:
            continue
        if finding.check == "port":
            raise O2cbError(f"start: {finding.message}: {finding.fix}")
        warn(f"o2cb: warning: {finding.line()}")
