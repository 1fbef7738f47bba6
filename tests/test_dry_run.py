"""--dry-run prints the plan a real run carries out: the same step titles.

For every verb that changes the machine and every starting state of the
simulated kernel, the titles of a dry run are those of the real run that
follows it, and the dry run changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from faultbed import o2cb, prepare, state
from simkernel import SimKernel

TITLE = re.compile(r"^(?P<title>.*): (?:OK|dry run|Failed)$")
VERBS = ["start", "stop", "restart", "load", "unload", "online", "offline", "force-offline"]
STATES = ["clean", "loaded", "online"]


def titles(stdout: str) -> list[str]:
    return [m.group("title") for line in stdout.splitlines() if (m := TITLE.match(line))]


@pytest.mark.parametrize("start_state", STATES)
def test_dry_run_titles_are_the_real_run_titles(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str],
    start_state: str,
) -> None:
    for verb in VERBS:
        sim = prepare(make_sim(), two_node_cluster_conf)
        if start_state != "clean":
            assert o2cb(sim, "load" if start_state == "loaded" else "start").exit_code == 0
        before = state(sim)
        dry = o2cb(sim, "--dry-run", verb)
        assert state(sim) == before, f"{verb}: the dry run changed the machine"
        real = o2cb(sim, verb)
        assert dry.exit_code == real.exit_code, (verb, dry.stdout, real.stdout)
        assert titles(dry.stdout) == titles(real.stdout), (verb, start_state)
