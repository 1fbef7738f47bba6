"""status --json and check --json against their documented schemas (doc/*.schema.json),
for every stack and every state the simulated kernel can be put in."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runs import CLUSTER, CONFIG, o2cb, o2cb_process
from schemacheck import errors
from simkernel import SimKernel, globalhb, o2net, two_node_cluster_conf
from test_global_heartbeat import NO_DEVICE_WAIT, cluster_conf
from test_userspace_stacks import Bed, make_bed  # noqa: F401 (a fixture)

DOC = Path(__file__).resolve().parent.parent / "doc"
STATUS = json.loads((DOC / "status.schema.json").read_text(encoding="utf-8"))
CHECK = json.loads((DOC / "check.schema.json").read_text(encoding="utf-8"))


def valid(schema: dict[str, Any], text: str) -> dict[str, Any]:
    data = json.loads(text)
    assert errors(data, schema) == []
    return data


def test_the_validator_refuses_what_breaks_a_schema() -> None:
    assert errors({"version": 1, "stack": "o2cb", "running": "yes", "configfs_loaded": True},
                  STATUS) == ["$.running: 'yes' is not of type ['boolean']"]
    assert errors({"version": 1, "stack": "o2cb", "running": True, "configfs_loaded": True,
                   "surprise": 1}, STATUS) == ["$: 'surprise' is not in the schema"]
    assert errors({"version": 2, "findings": []}, CHECK) == ["$.version: 2 is not 1"]
    assert errors({"version": 1, "findings": [{"check": "port", "ok": 1, "message": "",
                                               "fix": ""}]}, CHECK) == [
        "$.findings[0].ok: 1 is not of type ['boolean']"]


STATES: dict[str, Callable[[SimKernel], None]] = {
    "nothing-loaded": lambda sim: None,
    "loaded": lambda sim: _ok(sim, "load"),
    "online": lambda sim: _ok(sim, "start"),
    "pending": lambda sim: (_ok(sim, "start"), sim.write_cluster_conf(
        two_node_cluster_conf().replace("10.0.0.2", "10.0.0.9")),
        sim.write_config(CONFIG.replace("20000", "40000"))),
    "debugfs": lambda sim: (_ok(sim, "start"), o2net.set_nodes(sim.root, [0, 1], [1])),
    "mounted": lambda sim: (_ok(sim, "start"), sim.mount_ocfs2_volume(CLUSTER)),
    "no-config": lambda sim: (_ok(sim, "start"), sim.path("/etc/default/o2cb").unlink()),
}


def _ok(sim: SimKernel, verb: str) -> None:
    run = o2cb(sim, verb)
    assert run.exit_code == 0, run.stderr


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize(("stack", "profile"), [("o2cb", "modern"), ("o2cb", "legacy12"),
                                                ("heartbeat2", "hbmode2007")])
def test_status_json_of_every_state(make_sim: Callable[..., SimKernel], stack: str,
                                    profile: str, state: str) -> None:
    sim = make_sim(profile=profile)
    sim.write_config(CONFIG.replace("O2CB_STACK=o2cb", f"O2CB_STACK={stack}"))
    sim.write_cluster_conf(two_node_cluster_conf())
    STATES[state](sim)
    data = valid(STATUS, o2cb(sim, "status", "--json").stdout)
    assert data["version"] == 1


def test_status_json_of_a_partial_cluster(machine: SimKernel) -> None:
    killed = o2cb_process(machine, "start", fault="configfs:4:kill")
    assert killed.exit_code < 0
    data = valid(STATUS, o2cb(machine, "status", "--json").stdout)
    assert data["partial"] is True


@pytest.mark.skipif(shutil.which("mkfs.ocfs2") is None, reason="mkfs.ocfs2 is not installed")
def test_status_json_in_global_mode(make_sim: Callable[..., SimKernel], tmp_path: Path) -> None:
    image = tmp_path / "vol.img"
    uuid = globalhb.make_volume(image, CLUSTER)
    sim = make_sim()
    sim.add_volume("/dev/sdc", uuid, global_heartbeat=True, image=image)
    sim.write_config(CONFIG + NO_DEVICE_WAIT)
    sim.write_cluster_conf(cluster_conf([uuid]))
    _ok(sim, "start")
    o2net.set_nodes(sim.root, [0], [])
    data = valid(STATUS, o2cb(sim, "status", "--json").stdout)
    assert data["heartbeat_regions"][0]["uuid"] == uuid.upper()
    assert data["live_nodes"] == [0]


@pytest.mark.parametrize("steps", [(), ("load",), ("start",)], ids=["offline", "loaded", "online"])
@pytest.mark.parametrize("stack", ["cman", "pcmk"])
def test_status_json_with_control_daemons(make_bed: Callable[..., Bed],  # noqa: F811
                                          stack: str, steps: tuple[str, ...]) -> None:
    bed = make_bed(stack)
    for step in steps:
        assert bed.o2cb(step).exit_code == 0
    valid(STATUS, bed.o2cb("status", "--json").stdout)
    valid(CHECK, bed.o2cb("check", "--json").stdout)


@pytest.mark.parametrize("state", ["nothing-loaded", "online", "pending", "debugfs"])
def test_check_json_of_every_state(machine: SimKernel, state: str) -> None:
    STATES[state](machine)
    data = valid(CHECK, o2cb(machine, "check", "--json").stdout)
    assert any(finding["ok"] for finding in data["findings"])


def test_check_json_without_a_config(sim: SimKernel) -> None:
    run = o2cb(sim, "check", "--json")
    assert run.exit_code == 6
    data = valid(CHECK, run.stdout)
    assert [(f["check"], f["ok"]) for f in data["findings"]] == [("config", False)]
