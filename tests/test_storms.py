"""Concurrent runs: 8 mixed start/stop runs at once, round after round.

Each run is a real subprocess of the command; the lock makes them take
turns.  After every round the machine is consistent (clean online or
clean offline, never a half-built cluster or a lost baseline), and the
next start and stop reach the clean states.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable

from faultbed import state
from runs import o2cb, prepare
from simkernel import SimKernel

RUNS = 8
# 20 rounds take several minutes on a busy two-core machine: the fast suite runs 4,
# O2CB_STORM_ROUNDS=20 the full storm.
ROUNDS = int(os.environ.get("O2CB_STORM_ROUNDS", "4"))


def test_storms_of_concurrent_start_and_stop(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str]
) -> None:
    sim = prepare(make_sim(), two_node_cluster_conf)
    offline = state(sim)
    assert o2cb(sim, "start").exit_code == 0
    online = state(sim)
    assert o2cb(sim, "stop").exit_code == 0
    assert state(sim) == offline
    env = sim.environment()
    env["O2CB_LOCK_TIMEOUT"] = "300"
    chooser = random.Random(9)
    for round_number in range(ROUNDS):
        verbs = [chooser.choice(["start", "stop"]) for _ in range(RUNS)]
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "o2cb_init", "--root", str(sim.root), verb],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for verb in verbs
        ]
        for verb, process in zip(verbs, processes, strict=True):
            out, err = process.communicate(timeout=600)
            assert process.returncode == 0, (round_number, verb, out, err)
        last = state(sim)
        assert last in (online, offline), f"round {round_number}: {verbs}"
        # The last run to take the lock decides the end state; either way it is clean.
    assert o2cb(sim, "start").exit_code == 0
    assert state(sim) == online
    assert o2cb(sim, "stop").exit_code == 0
    assert state(sim) == offline
