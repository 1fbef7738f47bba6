"""The entry's own reading of plain command lines (entry.py) against click's (cli.py).

A command line that entry.py runs without click must print, exit and
change the machine exactly as click's parser would have it; any other goes
to click untouched.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from runs import CONFIG, prepare
from simkernel import SimKernel

from o2cb_init.entry import VERBS, plain

ENTRY = "import sys; sys.argv[0] = 'o2cb'; from o2cb_init.{} import main; main()"


def run(sim: SimKernel, module: str, *args: str, root: bool = True) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``o2cb [--root ROOT] ARGS`` through MODULE's main."""
    env = sim.environment()
    if not root:
        env.pop("O2CB_ROOT")
    done = subprocess.run(
        [sys.executable, "-c", ENTRY.format(module), *(["--root", str(sim.root)] if root else []),
         *args], env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    return done.returncode, done.stdout, done.stderr


READING = [
    ("status",), ("status", "--json"), ("status", "--json", "ocfs2"), ("status", "other"),
    ("online-status",), ("online-status", "ocfs2"), ("-v", "status"), ("--dry-run", "status"),
    ("status", "bad name"), ("status", ""), ("status", "a", "b"), ("status", "--jso"),
    ("--config", "/nowhere", "status"), ("--config=/nowhere", "status"), ("--config=", "status"),
    ("--root",), ("--bogus", "status"), ("-vv", "status"), ("load", "ocfs2"), ("nosuchverb",),
    (), ("-h",), ("status", "--help"), ("--version",), ("--dry-run", "start"),
    ("--dry-run", "-v", "stop", "ocfs2"), ("--", "status"), ("status", "--", "ocfs2"),
]


@pytest.mark.parametrize("args", READING, ids=" ".join)
def test_a_command_line_runs_as_click_would_run_it(machine: SimKernel, args: tuple[str, ...]
                                                   ) -> None:
    assert run(machine, "entry", *args) == run(machine, "cli", *args)


def test_the_root_from_the_environment_and_a_missing_root_behave_as_with_click(
    machine: SimKernel,
) -> None:
    assert run(machine, "entry", "status", root=False) == run(machine, "cli", "status", root=False)
    missing = ("--root", str(machine.root / "missing"), "status")
    result = run(machine, "entry", *missing, root=False)
    assert result == run(machine, "cli", *missing, root=False)
    assert result[0] == 2 and "is not a directory" in result[2]


def test_a_start_and_stop_change_the_machine_as_with_click(
    make_sim: Callable[..., SimKernel], two_node_cluster_conf: Callable[..., str]
) -> None:
    ours, clicks = (prepare(make_sim(), two_node_cluster_conf, CONFIG) for _ in range(2))
    for verb in ("start", "status", "stop", "status"):
        result = run(ours, "entry", verb)
        assert result == run(clicks, "cli", verb)
        assert ours.modules() == clicks.modules(), verb
    assert result[0] == 3


def test_only_plain_command_lines_are_read_without_click(tmp_path: object) -> None:
    environ = {"O2CB_ROOT": "/"}
    line = plain(["--root=/", "-v", "--config", "/etc/x", "status", "--json", "c1"], environ)
    assert line is not None
    assert (line.root, line.config_path, line.verbose, line.dry_run, line.verb, line.cluster,
            line.as_json) == ("/", "/etc/x", True, False, "status", "c1", True)
    for args in (["configure"], ["status", "-h"], ["--version"], ["-vv", "start"], [],
                 ["start", "--json"], ["enable", "c1"], ["--root", "/nowhere", "start"]):
        assert plain(args, environ) is None, args
    assert plain(["status"], {"_O2CB_COMPLETE": "bash_complete"}) is None
    assert plain(["status"], {"O2CB_ROOT": ""}) is None
    assert {"start", "stop", "status", "online-status"} <= set(VERBS)
