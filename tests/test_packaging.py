"""What the Debian package ships, checked from the source tree: the man page
covers every verb, option, exit code and config key; the bash completion
offers the verbs; the unit is the native oneshot the fstab line relies on;
the changelog's version is the package's."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from o2cb_init import __version__, config
from o2cb_init.cli import cli

REPO = Path(__file__).resolve().parent.parent
MAN = REPO / "doc" / "o2cb.init.8"
COMPLETION = REPO / "completion" / "o2cb.init"
UNIT = REPO / "systemd" / "o2cb.service"


def man_text() -> str:
    """The page as a reader sees it (roff escapes resolved)."""
    if shutil.which("man") is None:
        pytest.skip("man is not installed")
    completed = subprocess.run(
        ["man", "-l", "-P", "cat", str(MAN)],
        capture_output=True, text=True, env={"MANWIDTH": "200", "LC_ALL": "C.UTF-8",
                                             "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_man_page_names_every_verb_option_exit_code_and_key() -> None:
    text = man_text()
    verbs = text.split("\nVERBS\n", 1)[1].split("\nOPTIONS\n", 1)[0]
    for verb in cli.commands:
        assert re.search(rf"^\s+(\S+, )?{re.escape(verb)}(,| |$)", verbs, re.M), verb
    for option in ("--root", "--config", "--verbose", "--dry-run", "--version", "--json"):
        assert option in text, option
    for code in range(8):
        assert re.search(rf"^\s+{code}\s*$", text, re.M) or re.search(
            rf"^\s+{code}\s{{2,}}\S", text, re.M
        ), code
    for key in config.KEYS:
        assert key in text, key
    assert "/etc/default/o2cb" in text and "/etc/ocfs2/cluster.conf" in text


def test_man_page_names_every_finding_of_check() -> None:
    import json

    schema = json.loads((REPO / "doc" / "check.schema.json").read_text(encoding="utf-8"))
    names = schema["properties"]["findings"]["items"]["properties"]["check"]["enum"]
    section = man_text().split("\nCHECK FINDINGS\n", 1)[1].split("\nJSON OUTPUT\n", 1)[0]
    for name in names:
        assert re.search(rf"^\s+(\S+, )?{re.escape(name)}(,| |$)", section, re.M), name


def complete(words: list[str]) -> list[str]:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    script = (
        f'. {COMPLETION}\n'
        'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))\n'
        '_o2cb_init\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    completed = subprocess.run(
        ["bash", "-c", script, "bash", *words], capture_output=True, text=True, check=True
    )
    return completed.stdout.split()


def test_completion_offers_the_verbs_and_their_options() -> None:
    # list_commands, not cli.commands: `configure` is registered when first named.
    assert set(complete(["o2cb.init", ""])) == set(cli.list_commands(click.Context(cli)))
    assert complete(["o2cb.init", "st"]) == ["start", "stop", "status"]
    assert "--dry-run" in complete(["o2cb.init", "--"])
    assert complete(["o2cb.init", "--root", "/", "status", "--j"]) == ["--json"]
    assert complete(["o2cb.init", "check", "--j"]) == ["--json"]
    assert complete(["o2cb.init", "rel"]) == ["reload"]
    assert complete(["o2cb.init", "configure", "--stack", "pc"]) == ["pcmk"]


def test_unit_is_a_oneshot_that_starts_and_stops_the_stack() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    service = unit["Service"]
    assert service["Type"] == "oneshot"
    assert service["RemainAfterExit"] == "yes"
    assert service["ExecStart"] == "/usr/sbin/o2cb.init start"
    assert service["ExecStop"] == "/usr/sbin/o2cb.init stop"
    assert service["ExecReload"] == "/usr/sbin/o2cb.init reload"
    # A failed start must fail the unit: no exit status counts as success.
    assert "SuccessExitStatus" not in service
    # The fstab mounts are ordered after this unit and before remote-fs.target.
    ordering = unit["Unit"].get("After", "") + " " + unit["Unit"].get("Requires", "")
    assert "remote-fs" not in ordering
    assert "network-online.target" in unit["Unit"]["After"]


def unit_file() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    return unit


def test_unit_starts_after_shared_storage_and_pulls_none_of_it_in() -> None:
    """iSCSI login, multipath maps and udev first; at shutdown they stop after o2cb."""
    section = unit_file()["Unit"]
    after = section["After"].split()
    for storage in ("iscsid.service", "open-iscsi.service", "multipathd.service",
                    "systemd-udev-settle.service"):
        assert storage in after
    # pcmk's cluster manager, where it runs: corosync and dlm_controld's own unit.
    assert {"corosync.service", "dlm.service"} <= set(after)
    assert section["Wants"].split() == ["network-online.target"]
    assert "Requires" not in section
    assert set(section["Before"].split()) == {"remote-fs-pre.target", "remote-fs.target"}


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """The unit as systemd loads it; the command is one that exists on this host."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    text = UNIT.read_text().replace("/usr/sbin/o2cb.init", "/bin/true")
    text = re.sub(r"^Documentation=.*$", "", text, flags=re.M)  # no man page on the host
    copy = tmp_path / "o2cb.service"
    copy.write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", str(copy)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "o2cb.service" not in done.stderr, done.stderr


def test_changelog_version_is_the_package_version() -> None:
    first = (REPO / "debian" / "changelog").read_text().splitlines()[0]
    assert first.startswith(f"o2cb-init ({__version__}) ")
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'\nversion = "{__version__}"\n' in pyproject
    scripts = pyproject.split("[project.scripts]\n", 1)[1].split("\n[", 1)[0]
    assert re.findall(r"^([^#\s]\S*) = ", scripts, re.M) == ['"o2cb.init"']
