"""`o2cb configure` fed through a real pipe, as `printf '...' | o2cb configure` does.

The command runs as a separate process (``python -m o2cb_init``) whose stdin
is an OS pipe, so every answer after the first one sits in the same read
buffer: a reader that wrapped stdin anew for each question would lose them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from simkernel import SimKernel

PATH = "/etc/default/o2cb"


def configure(sim: SimKernel, answers: bytes, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "o2cb_init", "--root", str(sim.root), "configure", *options],
        input=answers.decode("utf-8", errors="surrogateescape"),
        env=sim.environment(),
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=120,
        cwd=sim.root,
    )


def keys(sim: SimKernel) -> dict[str, str]:
    """The KEY=value lines in force in the written file."""
    text = (sim.root / PATH.lstrip("/")).read_text()
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


@pytest.fixture
def machine(sim: SimKernel, two_node_cluster_conf: Callable[..., str]) -> SimKernel:
    sim.write_cluster_conf(two_node_cluster_conf())
    (sim.root / "etc/default").mkdir(parents=True, exist_ok=True)
    return sim


def test_every_answer_through_a_pipe_is_used(machine: SimKernel) -> None:
    answers = b"y\n\nocfs2\n45\n40000\n3000\n2500\n"
    completed = configure(machine, answers)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert keys(machine) == {
        "O2CB_ENABLED": "true",
        "O2CB_STACK": "o2cb",
        "O2CB_BOOTCLUSTER": "ocfs2",
        "O2CB_HEARTBEAT_THRESHOLD": "45",
        "O2CB_IDLE_TIMEOUT_MS": "40000",
        "O2CB_KEEPALIVE_DELAY_MS": "3000",
        "O2CB_RECONNECT_DELAY_MS": "2500",
    }
    # enabled: configure went on to start the cluster with the new timeouts
    tree = machine.tree()
    assert tree["ocfs2/node/node1/local"] == "1"
    assert tree["ocfs2/idle_timeout_ms"] == "40000"
    assert "Writing O2CB configuration: OK" in completed.stdout


def test_a_refused_answer_is_asked_again_from_the_same_pipe(machine: SimKernel) -> None:
    answers = b"n\nbogus\no2cb\n\n6\n8\n\n\n\n"
    completed = configure(machine, answers)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.splitlines() == [
        "Invalid cluster stack: bogus (one of o2cb, heartbeat2, cman, pcmk)",
        "heartbeat dead threshold cannot be less than 7",
    ]
    assert keys(machine) == {
        "O2CB_ENABLED": "false",
        "O2CB_STACK": "o2cb",
        "O2CB_BOOTCLUSTER": "",
        "O2CB_HEARTBEAT_THRESHOLD": "8",
        "O2CB_IDLE_TIMEOUT_MS": "30000",
        "O2CB_KEEPALIVE_DELAY_MS": "2000",
        "O2CB_RECONNECT_DELAY_MS": "2000",
    }
    assert machine.tree() == {}


def test_the_last_answer_without_a_newline_counts(machine: SimKernel) -> None:
    completed = configure(machine, b"n\n\n\n\n\n\n2100")
    assert completed.returncode == 0, completed.stderr
    assert keys(machine)["O2CB_RECONNECT_DELAY_MS"] == "2100"


@pytest.mark.parametrize("given", [0, 1, 3, 6])
def test_end_of_input_midway_writes_nothing(machine: SimKernel, given: int) -> None:
    answers = b"".join(line + b"\n" for line in [b"y", b"o2cb", b"ocfs2", b"31", b"30000",
                                                 b"2000"][:given])
    before = machine.snapshot()
    completed = configure(machine, answers)
    assert completed.returncode == 1
    assert completed.stderr == "o2cb: configure aborted: nothing was written\n"
    assert not (machine.root / PATH.lstrip("/")).exists()
    assert machine.snapshot() == before


def test_an_existing_file_survives_an_aborted_configure(machine: SimKernel) -> None:
    machine.write_config("# mine\nO2CB_ENABLED=false\nO2CB_BOOTCLUSTER=ocfs2\n")
    before = (machine.root / PATH.lstrip("/")).read_bytes()
    completed = configure(machine, b"y\npcmk\n")
    assert completed.returncode == 1
    assert (machine.root / PATH.lstrip("/")).read_bytes() == before


def test_bytes_that_are_not_utf8_are_refused_then_asked_again(machine: SimKernel) -> None:
    completed = configure(machine, b"\xff\xfe\nn\n\n\n\n\n\n\n")
    assert completed.returncode == 0, completed.stderr
    assert len(completed.stderr.splitlines()) == 1
    assert "Invalid answer" in completed.stderr
    assert keys(machine)["O2CB_ENABLED"] == "false"


def test_an_overlong_answer_is_one_refused_answer(machine: SimKernel) -> None:
    completed = configure(machine, b"n\n" + b"x" * 100_000 + b"\n\n\n\n\n\n\n")
    assert completed.returncode == 0, completed.stderr
    errors = completed.stderr.splitlines()
    assert len(errors) == 1
    assert len(errors[0]) < 200
    assert keys(machine)["O2CB_STACK"] == "o2cb"


def test_options_answer_in_advance_and_the_pipe_answers_the_rest(machine: SimKernel) -> None:
    completed = configure(machine, b"\n\n\n\n\n", "--disable", "--stack", "pcmk")
    assert completed.returncode == 0, completed.stderr
    assert keys(machine)["O2CB_STACK"] == "pcmk"
    assert keys(machine)["O2CB_ENABLED"] == "false"
