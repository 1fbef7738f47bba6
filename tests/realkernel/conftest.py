"""Session fixtures of the real-kernel bed: every test runs once per kernel.

The kernels are Debian's bullseye (5.10), bookworm (6.1) and trixie (6.12)
kernels that .ci/install-realkernel unpacks, or those named in
$O2CB_RK_KERNELS (suites or versions).  A test that reads a boot takes the
``kernel`` fixture, directly or through a boot fixture, so its id names the
kernel: ``test_start_brings_the_cluster_online[6.12.117+deb13-amd64-ours]``.

Boots are the cost (15-40 s of qemu start-up each under software
emulation), so each kernel boots once per plan (one implementation and its
scenarios, see harness.plan) and every test of that kernel reads the same
boot.  The boots of all kernels are queued at the first one asked for and
run one per core, so both cores stay busy until the last boot.

Without qemu, vng or a kernel the tests are skipped, with the reason; with
CI set in the environment they fail instead, so CI cannot pass by skipping
them.  A new scenario file declares its boot with harness.plan(...,
fixture=NAME) and defines the fixture as
``boot_queue.get(kernel, THE_PLAN)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import guest, harness, twonode

SCENARIOS = [
    "start",
    "status",
    "data-safety",
    "clean-shutdown",
    "idempotence",
    *(f"parity:{name}" for name in guest.PARITY_CASES),
]
# Verbs the reference script does not have.
OURS_ONLY = ["local-reload"]
IMPLS = ("ours", "reference")
CLASSIC = {
    impl: harness.plan(
        impl, impl, SCENARIOS + (OURS_ONLY if impl == "ours" else []), fixture="boots"
    )
    for impl in IMPLS
}
KERNELS = harness.kernels()

# (kernel, plan) pairs the collected tests need, in the order they run.
_WANTED: list[tuple[harness.Kernel, harness.Plan]] = []
# The two-node scenarios the collected tests read: one pair of boots runs them all.
_PAIR_SCENARIOS: list[str] = []


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _WANTED.clear()
    _PAIR_SCENARIOS.clear()
    for item in items:
        if "pair" in getattr(item, "fixturenames", ()):
            for name in getattr(item.module, "TWONODE_SCENARIOS", ()):
                if name not in _PAIR_SCENARIOS:
                    _PAIR_SCENARIOS.append(name)
        callspec = getattr(item, "callspec", None)
        kernel = callspec.params.get("kernel") if callspec else None
        if not isinstance(kernel, harness.Kernel):
            continue
        for plan in harness.PLANS.values():
            if plan.fixture in getattr(item, "fixturenames", ()) and (kernel, plan) not in _WANTED:
                _WANTED.append((kernel, plan))


@pytest.fixture(scope="session", params=KERNELS, ids=str)
def kernel(request: pytest.FixtureRequest) -> harness.Kernel:
    """Each kernel in turn; its tests are skipped (failed under CI) if it is missing."""
    chosen: harness.Kernel = request.param
    harness.require_bed(chosen)
    return chosen


@pytest.fixture(scope="session")
def boot_queue() -> Iterator[harness.BootQueue]:
    """The session's boots, all queued at the first one a test asks for."""
    queue = harness.BootQueue()
    queue.plan_ahead(_WANTED)
    _QUEUES.append(queue)
    yield queue
    queue.shutdown()


_QUEUES: list[harness.BootQueue] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Each boot's wall and CPU time, per kernel: what the bed costs."""
    lines = []
    for queue in _QUEUES:
        by_kernel: dict[str, list[tuple[str, harness.Boot]]] = {}
        for (version, name), future in queue.futures.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                by_kernel.setdefault(version, []).append((name, future.result()))
        for version, done in by_kernel.items():
            cpu = sum(boot.cpu_seconds for _name, boot in done)
            parts = ", ".join(
                f"{name} {boot.seconds:.0f} s ({boot.cpu_seconds:.0f} s CPU)" for name, boot in done
            )
            lines.append(f"kernel {version}: {parts}; {cpu:.0f} s CPU in all")
    for boots in _PAIRS:
        lines.append(pair_line(boots))
    if lines:
        terminalreporter.section("real-kernel boots")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def boots(kernel: harness.Kernel, boot_queue: harness.BootQueue) -> dict[str, harness.Boot]:
    """This kernel's two boots: every classic scenario with ours, and with the reference."""
    return {impl: boot_queue.get(kernel, plan) for impl, plan in CLASSIC.items()}


_PAIRS: list[dict[str, harness.Boot]] = []


def pair_line(boots: dict[str, harness.Boot]) -> str:
    """The pair's wall time per node, and each scenario's seconds on each node."""
    walls = ", ".join(f"node {role} {boot.seconds:.0f} s" for role, boot in boots.items())
    names = list(next(iter(boots.values())).results.get("scenarios", {}))
    each = "; ".join(
        f"{name} " + "/".join(
            f"{boot.results['scenarios'].get(name, {}).get('seconds', '?')}"
            for boot in boots.values())
        + " s"
        for name in names
    )
    return f"two-node pair: {walls}; scenarios (seconds on {'/'.join(boots)}): {each}"


@pytest.fixture(scope="session")
def pair() -> dict[str, harness.Boot]:
    """One pair of two-node boots for the session, running the scenarios of every
    collected test module that reads it (its ``TWONODE_SCENARIOS``)."""
    twonode.require_pair()
    boots = twonode.boot_pair(_PAIR_SCENARIOS)
    _PAIRS.append(boots)
    return boots


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    return request.param
