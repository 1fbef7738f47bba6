"""A generated corpus of bad inputs: config files, cluster.conf files, command lines.

Every case runs the real command (in-process for the bulk, a subset as a
subprocess with ``python -m o2cb_init``) against a simulated kernel and
must end the same way: no traceback, the right exit code (6 for an invalid
configuration, 2 for bad usage), exactly one short error line on stderr,
nothing on stdout, and nothing changed, neither in the (simulated) kernel
nor on disk.  Hypothesis then throws arbitrary text at both parsers.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clirunner import invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simkernel import SimKernel, two_node_cluster_conf

from o2cb_init import clusterconf, config
from o2cb_init.cli import cli
from o2cb_init.errors import ConfigError

GOOD_CONFIG = "O2CB_ENABLED=true\nO2CB_STACK=o2cb\nO2CB_BOOTCLUSTER=ocfs2\n"
LINE_MAX = 450  # "o2cb: " and the longest message
MEGABYTE = "7" * (1 << 20)
LONG_ARGUMENT = "7" * 100_000  # Linux takes at most 128 KiB in one argument


@dataclass(frozen=True)
class Case:
    id: str
    config: bytes = GOOD_CONFIG.encode()
    cluster_conf: bytes = two_node_cluster_conf().encode()
    args: tuple[str, ...] = ("start",)
    exit_code: int = 6


# -- the corpus -----------------------------------------------------------------------

BAD_NUMBERS = {
    "letters": "soon",
    "negative": "-5",
    "float": "3.5",
    "hex": "0x20",
    "spaces": '"1 2"',
    "huge": "9" * 5000,
    "megabyte": MEGABYTE,
    "beyond 32 bits": str(2**31),
    "unicode digits": "٣٣",
}


def config_cases() -> Iterator[Case]:
    for option in config.OPTIONS:
        values = dict(BAD_NUMBERS)
        if option.parser is None:
            values["below minimum"] = str(option.minimum - 1)
            if option.minimum > 0:
                values["zero"] = "0"
            if option.maximum < config.VALUE_MAX:
                values["above maximum"] = str(option.maximum + 1)
        else:
            values.pop("unicode digits")
            values["other word"] = "maybe"
            values["bad cluster"] = "my/cluster"
        for name, value in values.items():
            if option.key == "O2CB_BOOTCLUSTER" and name in ("huge", "beyond 32 bits"):
                continue  # digits make a valid name of up to 16 characters
            text = GOOD_CONFIG + f"{option.key}={value}\n"
            if option.key in GOOD_CONFIG:
                text = "".join(
                    line + "\n" for line in GOOD_CONFIG.splitlines()
                    if not line.startswith(option.key + "=")
                ) + f"{option.key}={value}\n"
            yield Case(f"config {option.key} {name}", config=text.encode())
    structural = {
        "not an assignment": "O2CB_ENABLED true\n",
        "shell command": "O2CB_ENABLED=$(reboot)\n",
        "backquotes": "O2CB_STACK=`reboot`\n",
        "export": "export O2CB_ENABLED=true\n",
        "unterminated quote": 'O2CB_STACK="o2cb\n',
        "two words": "O2CB_STACK=o2cb cman\n",
        "duplicate key": "O2CB_ENABLED=false\n",
        "keepalive not below idle": "O2CB_KEEPALIVE_DELAY_MS=30000\n",
        "megabyte line": MEGABYTE + "\n",
        "megabyte quoted value": f'O2CB_STACK="{MEGABYTE}"\n',
        "megabyte shell value": f"O2CB_STACK=$({MEGABYTE})\n",
        "stanza": "[section]\n",
        "semicolon": "O2CB_ENABLED=true; reboot\n",
    }
    for name, line in structural.items():
        yield Case(f"config {name}", config=(GOOD_CONFIG + line).encode())
    binary = {
        "nul byte": b"O2CB_STACK=o2\x00cb\n",
        "invalid utf-8": b"O2CB_STACK=\xff\xfe\n",
        "escape character": b"O2CB_STACK=\x1b[2J\n",
        "carriage return": b"O2CB_STACK=o2cb\r\n",
    }
    for name, data in binary.items():
        yield Case(f"config {name}", config=GOOD_CONFIG.encode() + data)


def _replace(text: str, old: str, new: str) -> bytes:
    assert old in text, old
    return text.replace(old, new, 1).encode()


def cluster_conf_cases() -> Iterator[Case]:
    good = two_node_cluster_conf()
    fields = {
        "\tnumber = 0\n": ("number", ["255", "-1", "9" * 5000, MEGABYTE, "one", "0x1", ""]),
        "\tip_port = 7777\n": ("ip_port", ["0", "65535", "65536", "9" * 5000, MEGABYTE, "http"]),
        "\tip_address = 127.0.0.1\n": (
            "ip_address", ["127.0.0.256", "::1", "localhost", "1.2.3", MEGABYTE, ""]
        ),
        "\tnode_count = 2\n": ("node_count", ["257", "-2", "9" * 5000, "two"]),
        "\tname = ocfs2\n": ("cluster name", ["my/cluster", "..", "a" * 17, MEGABYTE, ""]),
        "\tname = node1\n": ("node name", ["-node", "node/1", MEGABYTE, ""]),
        "\tcluster = ocfs2\n": ("node cluster", ["other", MEGABYTE]),
    }
    for old, (what, values) in fields.items():
        key = old.split("=")[0]
        for value in values:
            shown = value if len(value) < 20 else f"{len(value)} characters"
            yield Case(f"cluster.conf {what} {shown!r}",
                       cluster_conf=_replace(good, old, f"{key}= {value}\n"))
    structural = {
        "no header": "\tname = x\n" + good,
        "unknown stanza": good + "nodes:\n\tname = x\n",
        "header with spaces": good + "clus ter:\n",
        "setting without value": good.replace("\tnumber = 0\n", "\tnumber\n"),
        "duplicate setting": good.replace("\tnumber = 0\n", "\tnumber = 0\n\tnumber = 2\n"),
        "duplicate node number": good.replace("\tnumber = 1\n", "\tnumber = 0\n"),
        "duplicate address": good.replace("10.0.0.2", "127.0.0.1"),
        "cluster twice": good + "cluster:\n\tnode_count = 0\n\tname = ocfs2\n",
        "heartbeat mode": good + "\theartbeat_mode = disk\n",
        "megabyte header": "x" * (1 << 20) + ":\n" + good,
        "megabyte line": good + "\t" + "x" * (1 << 20) + "\n",
    }
    for name, text in structural.items():
        yield Case(f"cluster.conf {name}", cluster_conf=text.encode())
    for name, data in {"nul byte": b"\x00", "invalid utf-8": b"\xc3\x28"}.items():
        yield Case(f"cluster.conf {name}", cluster_conf=good.encode() + data + b"\n")


def command_line_cases() -> Iterator[Case]:
    clusters = ["ocfs2/node/node2", "../cluster/ocfs2", "..", ".", "a" * 17, "x/", "",
                "ocfs2 ", "café", "o\ncfs2", "\x1b[2J", "7" * 50_000 + "\n" + "7" * 50_000]
    for verb in ("start", "stop", "online", "offline", "force-offline", "status", "unload",
                 "online-status", "restart"):
        for cluster in clusters:
            shown = cluster if len(cluster) < 20 else f"{len(cluster)} characters"
            yield Case(f"{verb} {shown!r}", args=(verb, "--", cluster), exit_code=2)
    others = {
        "unknown verb": ("bogus",),
        "long verb": (LONG_ARGUMENT,),
        "unknown option": ("--bogus", "status"),
        "verb option": ("status", "--bogus"),
        "two clusters": ("start", "a", "b"),
        "configure threshold": ("configure", "-y", "--heartbeat-threshold", "3"),
        "configure huge": ("configure", "-y", "--idle-timeout-ms", "9" * 5000),
        "configure stack": ("configure", "-y", "--stack", "zfs"),
        "configure cluster": ("configure", "-y", "--cluster", "../x"),
        "configure long": ("configure", "-y", "--stack", LONG_ARGUMENT),
        "configure keepalive": ("configure", "-y", "--keepalive-delay-ms", "40000"),
    }
    for name, args in others.items():
        yield Case(name, args=args, exit_code=2)


CASES = [*config_cases(), *cluster_conf_cases(), *command_line_cases()]
# A subset that runs as a separate process: every seventh case, and every kind.
SUBPROCESS = [case for index, case in enumerate(CASES) if index % 7 == 0]


def test_the_corpus_is_large_and_its_names_unique() -> None:
    assert len(CASES) > 200
    assert len({case.id for case in CASES}) == len(CASES)


# -- running a case ---------------------------------------------------------------------


@pytest.fixture
def prepare(sim: SimKernel) -> Callable[[Case], dict[str, object]]:
    def run(case: Case) -> dict[str, object]:
        sim.path("/etc/default").mkdir(parents=True, exist_ok=True)
        sim.path("/etc/default/o2cb").write_bytes(case.config)
        sim.path("/etc/ocfs2").mkdir(parents=True, exist_ok=True)
        sim.path("/etc/ocfs2/cluster.conf").write_bytes(case.cluster_conf)
        return state(sim)

    return run


def state(sim: SimKernel) -> dict[str, object]:
    files = {
        str(path.relative_to(sim.root)): path.read_bytes()
        for top in ("etc", "run")
        for path in sorted(sim.path(f"/{top}").rglob("*"))
        if path.is_file()
    } if sim.path("/etc").exists() else {}
    return {"kernel": sim.snapshot(), "files": files}


def check(case: Case, code: int, stdout: str, stderr: str) -> None:
    assert "Traceback" not in stdout + stderr
    assert code == case.exit_code, stderr[:500]
    if case.args[0] != "configure" or case.exit_code != 2:
        assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr[:2000]
    assert lines[0].startswith("o2cb: ")
    assert len(lines[0]) <= LINE_MAX


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_in_process(
    case: Case, sim: SimKernel, prepare: Callable[[Case], dict[str, object]]
) -> None:
    before = prepare(case)
    result = invoke(cli, ["--root", str(sim.root), *case.args], prog_name="o2cb")
    check(case, result.exit_code, result.stdout, result.stderr)
    assert state(sim) == before


@pytest.mark.parametrize("case", SUBPROCESS, ids=lambda case: case.id)
def test_as_a_process(
    case: Case, sim: SimKernel, prepare: Callable[[Case], dict[str, object]]
) -> None:
    before = prepare(case)
    completed = subprocess.run(
        [sys.executable, "-m", "o2cb_init", "--root", str(sim.root), *case.args],
        env=sim.environment(), capture_output=True, text=True, errors="replace",
        timeout=120, cwd=sim.root,
    )
    check(case, completed.returncode, completed.stdout, completed.stderr)
    assert state(sim) == before


def test_bad_root_directories(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("")
    for root in ["", str(tmp_path / "missing"), str(afile), "/" + "x" * 100_000]:
        result = invoke(cli, ["--root", root, "status"], prog_name="o2cb")
        check(Case("root", args=("status",), exit_code=2), result.exit_code, result.stdout,
              result.stderr)


# -- any text at all --------------------------------------------------------------------

lines = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(["cluster:", "node:", "heartbeat:", "\tname = ocfs2",
                         "\tnumber = 1", "\tip_port = 99999999999999999999", "O2CB_STACK=o2cb",
                         "O2CB_HEARTBEAT_THRESHOLD=" + "9" * 5000, "\tcluster = ocfs2",
                         "O2CB_ENABLED=true", "#", ""]),
    ),
    max_size=12,
).map("\n".join)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text=lines)
def test_any_cluster_conf_text_parses_or_fails_with_one_short_line(text: str) -> None:
    try:
        clusterconf.parse(text, "/etc/ocfs2/cluster.conf")
    except ConfigError as error:
        assert "\n" not in error.message
        assert len(error.message) <= LINE_MAX


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text=lines)
def test_any_config_text_reads_or_fails_with_one_short_line(text: str) -> None:
    try:
        config.ConfigFile.parse(text, "/etc/default/o2cb").settings()
    except ConfigError as error:
        assert "\n" not in error.message
        assert len(error.message) <= LINE_MAX
