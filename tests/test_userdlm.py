"""userdlm domains under /dlm, on the simulated kernel.

A holder is a real process with a lock file of a domain open under the
mounted /dlm (``SimKernel.hold_dlm``): while it lives, the simulated umount
of /dlm says "target is busy", as the kernel does.  offline and stop must
refuse before anything is stopped; force-offline ends the holder; domains
nobody holds are removed; status lists them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from clirunner import invoke
from faultbed import CONFIG, prepare
from simkernel import SimKernel

from o2cb_init.cli import cli
from o2cb_init.system import System

CLUSTER = "ocfs2"
DOMAIN = "o2cbtest"
CLEAN = "Clean userdlm domains: OK"
REFUSED = "Clean userdlm domains: Failed"


def o2cb(sim: SimKernel, *args: str) -> tuple[int, list[str], list[str]]:
    result = invoke(cli, ["--root", str(sim.root), *args])
    return result.exit_code, result.stdout.splitlines(), result.stderr.splitlines()


@pytest.fixture
def online(sim: SimKernel, two_node_cluster_conf: Callable[..., str]) -> SimKernel:
    prepare(sim, two_node_cluster_conf)
    code, _, errors = o2cb(sim, "start")
    assert code == 0, errors
    return sim


@pytest.mark.parametrize("verb", ["stop", "offline", "unload", "restart"])
def test_a_holder_refuses_the_verb_before_anything_stops(online: SimKernel, verb: str) -> None:
    with online.hold_dlm(DOMAIN) as holder:
        before = online.snapshot()
        code, lines, errors = o2cb(online, verb)
        assert code == 1
        assert lines == [REFUSED]
        assert len(errors) == 1
        assert f"pid {holder.pid} (" in errors[0]
        assert "force-offline" in errors[0]
        assert online.snapshot() == before
        assert holder.process.poll() is None, "the holder must be left running"
        assert online.path(f"/dlm/{DOMAIN}").is_dir()


def test_a_holder_refuses_stop_of_a_cluster_already_offline(online: SimKernel) -> None:
    code, _, errors = o2cb(online, "offline")
    assert code == 0, errors
    with online.hold_dlm(DOMAIN) as holder:
        before = online.snapshot()
        code, lines, errors = o2cb(online, "stop")
        assert (code, lines) == (1, [REFUSED])
        assert f"pid {holder.pid}" in errors[0]
        assert online.snapshot() == before
        assert online.is_mounted("/dlm")


def test_the_error_line_stays_one_short_line_with_many_holders(online: SimKernel) -> None:
    holders = [online.hold_dlm(f"d{number}") for number in range(7)]
    try:
        code, _, errors = o2cb(online, "stop")
    finally:
        for holder in holders:
            holder.release()
    assert code == 1
    assert len(errors) == 1
    assert "and 2 more" in errors[0]
    assert len(errors[0]) < 600


def test_force_offline_ends_the_holder_and_takes_the_cluster_down(online: SimKernel) -> None:
    with online.hold_dlm(DOMAIN) as holder:
        code, lines, errors = o2cb(online, "force-offline")
        assert code == 0, errors
        assert lines[:3] == [CLEAN, f"Stopping O2CB cluster {CLUSTER}: OK",
                             f'Unregistering O2CB cluster "{CLUSTER}": OK']
        assert holder.process.wait(timeout=10) is not None
        assert online.tree() == {}
        assert not online.path(f"/dlm/{DOMAIN}").exists()
    code, _, errors = o2cb(online, "stop")
    assert code == 0, errors
    assert online.modules() == {}
    assert online.mounts() == []


def test_a_holder_that_ignores_sigterm_gets_sigkill(online: SimKernel) -> None:
    lock = online.path(f"/dlm/{DOMAIN}/M0001")
    lock.parent.mkdir()
    stubborn = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, sys, time\n"
         "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
         "handle = open(sys.argv[1], 'a')\n"
         "print('holding', flush=True)\n"
         "time.sleep(60)\n", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline().strip() == "holding"
        code, lines, errors = o2cb(online, "force-offline")
        assert code == 0, errors
        assert lines[0] == CLEAN
        assert stubborn.wait(timeout=10) == -9
        assert online.tree() == {}
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
            stubborn.wait()


def test_offline_removes_domains_nobody_holds(online: SimKernel) -> None:
    online.path(f"/dlm/{DOMAIN}").mkdir()
    (online.path(f"/dlm/{DOMAIN}") / "M0001").touch()  # a lock nobody has open
    code, lines, errors = o2cb(online, "offline")
    assert code == 0, errors
    assert lines == [CLEAN, f"Stopping O2CB cluster {CLUSTER}: OK",
                     f'Unregistering O2CB cluster "{CLUSTER}": OK']
    assert not online.path(f"/dlm/{DOMAIN}").exists()
    assert online.tree() == {}


def test_offline_without_domains_prints_no_clean_line(online: SimKernel) -> None:
    code, lines, _ = o2cb(online, "offline")
    assert code == 0
    assert CLEAN not in lines


def test_nothing_is_ended_while_a_volume_is_mounted(online: SimKernel) -> None:
    online.mount_ocfs2_volume(CLUSTER)
    with online.hold_dlm(DOMAIN) as holder:
        before = online.snapshot()
        code, lines, errors = o2cb(online, "force-offline")
        assert code == 1
        assert REFUSED not in lines and CLEAN not in lines
        assert "OCFS2 volume /dev/sdb is still mounted" in " ".join(errors)
        assert holder.process.poll() is None
        assert online.snapshot() == before


def test_status_lists_the_active_domains(online: SimKernel) -> None:
    with online.hold_dlm("beta"), online.hold_dlm("alpha"):
        code, lines, _ = o2cb(online, "status")
        assert code == 0
        assert "Active userdlm domains:  alpha beta" in lines
        assert lines.index("Active userdlm domains:  alpha beta") == len(lines) - 2
        code, lines, _ = o2cb(online, "status", "--json")
        assert code == 0
        assert json.loads("\n".join(lines))["userdlm_domains"] == ["alpha", "beta"]


def test_status_without_domains_has_no_domain_line(online: SimKernel) -> None:
    code, lines, _ = o2cb(online, "status")
    assert code == 0
    assert not any(line.startswith("Active userdlm domains") for line in lines)
    code, lines, _ = o2cb(online, "status", "--json")
    assert json.loads("\n".join(lines))["userdlm_domains"] == []


def test_dry_run_force_offline_plans_and_ends_nothing(online: SimKernel) -> None:
    with online.hold_dlm(DOMAIN) as holder:
        before = online.snapshot()
        code, lines, errors = o2cb(online, "--dry-run", "force-offline")
        assert code == 0, errors
        assert lines[0] == "Clean userdlm domains: dry run"
        assert any(f"send SIGTERM to pid {holder.pid}" in line for line in lines)
        assert holder.process.poll() is None
        assert online.snapshot() == before


# -- the installed command, in a subprocess ---------------------------------------


def installed_command() -> str:
    found = shutil.which("o2cb.init", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("the o2cb.init console script is not installed next to this python")
    return found


def run_installed(sim: SimKernel, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [installed_command(), "--root", str(sim.root), *args],
        env=sim.environment(dict(os.environ)), capture_output=True, text=True,
        timeout=120, check=False,
    )


def test_installed_command_refuses_stop_then_force_offline_ends_the_holder(
    sim: SimKernel, two_node_cluster_conf: Callable[..., str]
) -> None:
    sim.write_config(CONFIG)
    sim.write_cluster_conf(two_node_cluster_conf())
    started = run_installed(sim, "start")
    assert started.returncode == 0, started.stderr
    with sim.hold_dlm(DOMAIN) as holder:
        before = sim.snapshot()
        refused = run_installed(sim, "stop")
        assert refused.returncode == 1
        assert refused.stdout.splitlines() == [REFUSED]
        assert refused.stderr.count("\n") == 1
        assert f"pid {holder.pid}" in refused.stderr
        assert holder.process.poll() is None
        assert sim.snapshot() == before

        forced = run_installed(sim, "force-offline")
        assert forced.returncode == 0, forced.stderr
        assert forced.stdout.splitlines()[0] == CLEAN
        assert holder.process.wait(timeout=10) is not None
    stopped = run_installed(sim, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert sim.modules() == {}
    assert sim.mounts() == []


def test_a_process_whose_working_directory_is_dlm_holds_it(online: SimKernel) -> None:
    sitting = subprocess.Popen(
        [sys.executable, "-c", "import time; print('in', flush=True); time.sleep(60)"],
        cwd=online.path("/dlm"), stdout=subprocess.PIPE, text=True,
    )
    try:
        assert sitting.stdout is not None and sitting.stdout.readline().strip() == "in"
        code, lines, errors = o2cb(online, "offline")
        assert (code, lines) == (1, [REFUSED])
        assert f"pid {sitting.pid}" in errors[0]
        assert CLUSTER in {path.split("/")[0] for path in online.tree()}
    finally:
        sitting.kill()
        sitting.wait()


def test_global_heartbeat_regions_do_not_hide_the_holders(online: SimKernel) -> None:
    """Global regions run whenever the cluster is online, with no volume mounted:
    offline must still find the holder, first, and force-offline must end it."""
    uuid = "1C48AD355CB440EABD3A66BC042FCEF2"
    System(root=str(online.root)).write_attribute(
        f"/sys/kernel/config/cluster/{CLUSTER}/heartbeat/mode", "global")
    online.add_volume("/dev/sdc", uuid)
    online.start_region(CLUSTER, uuid, "/dev/sdc")
    with online.hold_dlm(DOMAIN) as holder:
        before = online.snapshot()
        code, lines, errors = o2cb(online, "offline")
        assert (code, lines[0]) == (1, REFUSED)
        assert f"pid {holder.pid}" in errors[0]
        assert online.snapshot() == before
        code, lines, _ = o2cb(online, "force-offline")
        assert lines[0] == CLEAN
        assert holder.process.wait(timeout=10) is not None
        assert not online.path(f"/dlm/{DOMAIN}").exists()
