"""Session fixtures of the real-kernel bed: two boots, run side by side, shared by all tests.

One boot runs every scenario with our ``o2cb``, the other with Debian's
/etc/init.d/o2cb; each boot costs 15-40 s of qemu start-up under software
emulation, so the scenarios are grouped rather than booted one by one.
Without qemu, vng or the kernel the tests are skipped, with the reason;
with CI set in the environment they fail instead, so CI cannot pass by
skipping them.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from . import guest, harness

SCENARIOS = [
    "start",
    "status",
    "data-safety",
    "clean-shutdown",
    "idempotence",
    *(f"parity:{name}" for name in guest.PARITY_CASES),
]
IMPLS = ("ours", "reference")


@pytest.fixture(scope="session")
def boots() -> dict[str, harness.Boot]:
    """Both boots, run concurrently (each qemu takes one core)."""
    harness.require_bed()
    with ThreadPoolExecutor(max_workers=len(IMPLS)) as pool:
        futures = {impl: pool.submit(harness.boot, impl, SCENARIOS) for impl in IMPLS}
        results = {impl: future.result() for impl, future in futures.items()}
    keep = os.environ.get("O2CB_RK_RESULTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for impl, boot in results.items():
            data = dict(boot.results, wall_seconds=round(boot.seconds, 1), problems=boot.problems)
            (Path(keep) / f"{impl}.json").write_text(json.dumps(data, indent=1, sort_keys=True))
            (Path(keep) / f"{impl}-console.txt").write_text(boot.console)
    return results


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    return request.param
