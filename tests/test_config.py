"""The sysconfig file: locating, strict reading, line-preserving atomic writes."""

from __future__ import annotations

import errno
import io
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from o2cb_init import config
from o2cb_init.config import ConfigFile, Settings
from o2cb_init.errors import ConfigError, ExitCode, O2cbError, StepFailed
from o2cb_init.plan import Planner
from o2cb_init.report import Reporter
from o2cb_init.system import System

REPO = Path(__file__).resolve().parent.parent
PATH = "/etc/default/o2cb"


@pytest.fixture
def system(tmp_path: Path) -> System:
    (tmp_path / "etc/default").mkdir(parents=True)
    return System(root=str(tmp_path))


def put(system: System, data: str | bytes, path: str = PATH) -> Path:
    real = Path(system.path(path))
    real.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    real.write_bytes(data)
    return real


# -- the sample -------------------------------------------------------------------


@pytest.mark.parametrize("copy", ["etc/sysconfig/o2cb.sample", "o2cb_init/o2cb.sample"])
def test_shipped_samples_are_the_generated_text(copy: str) -> None:
    # regenerate with: python -c "from o2cb_init.config import sample_text;
    #   print(sample_text(), end='')" > etc/sysconfig/o2cb.sample (and o2cb_init/)
    assert (REPO / copy).read_text() == config.sample_text()


def test_sample_has_every_key_commented_with_its_default() -> None:
    lines = config.sample_text().splitlines()
    for option in config.OPTIONS:
        assert f"#{option.key}={option.default}" in lines
    document = ConfigFile.parse(config.sample_text(), "sample")
    assert document.entries == {}
    assert document.settings()[0] == Settings(path="sample")


# -- locating -----------------------------------------------------------------------


def test_locate_prefers_existing_sysconfig(tmp_path: Path) -> None:
    system = System(root=str(tmp_path))
    put(system, "", "/etc/sysconfig/o2cb")
    put(system, "", "/etc/default/o2cb")
    assert config.locate(system) == "/etc/sysconfig/o2cb"


def test_locate_then_existing_default(tmp_path: Path) -> None:
    system = System(root=str(tmp_path))
    (tmp_path / "etc/sysconfig").mkdir(parents=True)
    put(system, "", "/etc/default/o2cb")
    assert config.locate(system) == "/etc/default/o2cb"


def test_locate_new_file_in_sysconfig_directory(tmp_path: Path) -> None:
    system = System(root=str(tmp_path))
    (tmp_path / "etc/sysconfig").mkdir(parents=True)
    (tmp_path / "etc/default").mkdir(parents=True)
    assert config.locate(system) == "/etc/sysconfig/o2cb"


def test_locate_falls_back_to_default(system: System) -> None:
    assert config.locate(system) == "/etc/default/o2cb"


def test_explicit_path_overrides(system: System) -> None:
    put(system, "O2CB_ENABLED=true\n", "/srv/my-o2cb")
    put(system, "O2CB_ENABLED=false\n")
    assert config.load(system, "/srv/my-o2cb").enabled is True


# -- reading --------------------------------------------------------------------------


def test_load_typed_values_plain_and_quoted(system: System) -> None:
    put(
        system,
        "# comment\n"
        "O2CB_ENABLED=true\n"
        'O2CB_STACK="pcmk"  # inline comment\n'
        "O2CB_BOOTCLUSTER='web1'\n"
        "O2CB_HEARTBEAT_THRESHOLD=61\n"
        'O2CB_IDLE_TIMEOUT_MS="60000"\n'
        "O2CB_KEEPALIVE_DELAY_MS=5000\n"
        "O2CB_RECONNECT_DELAY_MS=4000\n",
    )
    assert config.load(system) == Settings(PATH, True, "pcmk", "web1", 61, 60000, 5000, 4000)


def test_empty_values_and_missing_keys_mean_defaults(system: System) -> None:
    put(system, 'O2CB_STACK=\nO2CB_HEARTBEAT_THRESHOLD=""\nO2CB_ENABLED=\n')
    assert config.load(system) == Settings(PATH)


def test_unknown_keys_are_kept_and_ignored(system: System) -> None:
    put(system, "O2CB_ENABLED=true\nFUTURE_KEY=something\nOTHER=$(whatever)\n")
    settings = config.load(system)
    assert settings.enabled is True
    document = config.read(system)
    assert document.get("FUTURE_KEY") == "something"


def test_missing_file_is_not_configured(system: System) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(system)
    assert PATH in caught.value.message
    assert "o2cb configure" in caught.value.message
    assert caught.value.exit_code == ExitCode.NOT_CONFIGURED == 6


BAD_FILES = [
    # (content, line, words in the reason)
    ("O2CB_STACK=foo\n", 2, "Invalid cluster stack: foo"),
    ("O2CB_STACK=O2CB\n", 2, "Invalid cluster stack"),
    ("O2CB_HEARTBEAT_THRESHOLD=abc\n", 2, "Invalid heartbeat dead threshold value: abc"),
    ("O2CB_HEARTBEAT_THRESHOLD=-5\n", 2, "Invalid heartbeat dead threshold value"),
    ("O2CB_HEARTBEAT_THRESHOLD=6\n", 2, "cannot be less than 7"),
    ("O2CB_HEARTBEAT_THRESHOLD=99999999999\n", 2, "cannot be more than"),
    ("O2CB_IDLE_TIMEOUT_MS=4999\n", 2, "cannot be less than 5000"),
    ("O2CB_IDLE_TIMEOUT_MS=3e4\n", 2, "Invalid network idle timeout in ms value"),
    ("O2CB_KEEPALIVE_DELAY_MS=999\n", 2, "cannot be less than 1000"),
    ("O2CB_RECONNECT_DELAY_MS=1999\n", 2, "cannot be less than 2000"),
    ("O2CB_IDLE_TIMEOUT_MS=6000\nO2CB_KEEPALIVE_DELAY_MS=6000\n", 3, "must be less than"),
    ("O2CB_KEEPALIVE_DELAY_MS=40000\n", 2, "must be less than"),
    ("O2CB_BOOTCLUSTER=my.cluster\n", 2, "Invalid cluster name"),
    ("O2CB_BOOTCLUSTER=abcdefghijklmnopq\n", 2, "Invalid cluster name"),
    ("O2CB_ENABLED=yes\n", 2, "must be true or false"),
    ("O2CB_ENABLED=TRUE\n", 2, "must be true or false"),
    ("just some words\n", 2, "expected KEY=value"),
    ("O2CB_ENABLED = true\n", 2, "expected KEY=value"),
    ("[section]\n", 2, "expected KEY=value"),
    ("export O2CB_ENABLED=true\n", 2, "expected KEY=value"),
    ("O2CB_ENABLED=true\n\nO2CB_ENABLED=false\n", 4, "duplicate key O2CB_ENABLED"),
    ("FOO=1\nFOO=2\n", 3, "duplicate key FOO"),
    ('O2CB_STACK="o2cb\n', 2, "unterminated quote"),
    ("O2CB_STACK=o2cb cman\n", 2, "invalid value for O2CB_STACK"),
    ("O2CB_STACK='''o2cb'''\n", 2, "invalid value for O2CB_STACK"),
    ("O2CB_STACK=o2cb;reboot\n", 2, "Invalid cluster stack"),
    (b"O2CB_ENABLED=true\x00\n", 2, "binary content"),
    (b"O2CB_STACK=\xff\xfe\n", 2, "binary content"),
    (b"\x7fELF\x02\x01\x01\n", 2, "binary content"),
    ("O2CB_ENABLED=true\r\n", 2, "binary content"),
]


@pytest.mark.parametrize(("content", "line", "reason"), BAD_FILES)
def test_invalid_file_names_file_line_and_reason(
    system: System, content: str | bytes, line: int, reason: str
) -> None:
    prefix = b"# first line is a comment\n"
    put(system, prefix + (content if isinstance(content, bytes) else content.encode()))
    with pytest.raises(ConfigError) as caught:
        config.load(system)
    message = caught.value.message
    assert message.startswith(f"{PATH}:{line}: "), message
    assert reason in message
    assert "\n" not in message
    assert caught.value.exit_code == 6


@pytest.mark.parametrize(
    "template",
    [
        "O2CB_STACK=$(touch {marker})\n",
        'O2CB_STACK="$(touch {marker})"\n',
        "O2CB_STACK=`touch {marker}`\n",
        'O2CB_BOOTCLUSTER="`touch {marker}`"\n',
        "O2CB_HEARTBEAT_THRESHOLD=31;touch {marker}\n",
        "O2CB_ENABLED=true && touch {marker}\n",
    ],
)
def test_shell_code_runs_nothing_and_is_invalid(
    system: System, tmp_path: Path, template: str
) -> None:
    marker = tmp_path / "marker"
    put(system, template.format(marker=marker))
    with pytest.raises(ConfigError) as caught:
        config.load(system)
    assert caught.value.message.startswith(f"{PATH}:1: ")
    assert not marker.exists()


def test_shell_code_in_unknown_key_is_kept_unrun_through_a_write(
    system: System, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    line = f"HOOK=$(touch {marker}) `touch {marker}`"
    put(system, f"{line}\nO2CB_ENABLED=false\n")
    assert config.load(system).enabled is False
    assert config.set_enabled(system, PATH, True) is True
    assert Path(system.path(PATH)).read_text() == f"{line}\nO2CB_ENABLED=true\n"
    assert not marker.exists()


# -- ownership and mode (sshd StrictModes) ---------------------------------------------


def fake_stat(mode: int, uid: int) -> os.stat_result:
    return os.stat_result((stat.S_IFREG | mode, 1, 1, 1, uid, 0, 10, 0, 0, 0))


def test_protection_accepts_root_owned_0644() -> None:
    config.check_protection("/etc/default/o2cb", fake_stat(0o644, 0))
    config.check_protection("/etc/default/o2cb", fake_stat(0o600, 0))


@pytest.mark.parametrize(
    ("mode", "uid", "reason"),
    [
        (0o664, 0, "writable by group or others (mode 0664)"),
        (0o646, 0, "writable by group or others (mode 0646)"),
        (0o644, 1000, "owned by uid 1000, not root"),
        (0o666, 1000, "owned by uid 1000, not root and writable by group or others"),
    ],
)
def test_protection_refuses_files_others_could_write(mode: int, uid: int, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.check_protection("/etc/default/o2cb", fake_stat(mode, uid))
    assert caught.value.message.startswith("/etc/default/o2cb: refusing to use it: ")
    assert reason in caught.value.message
    assert "chmod go-w" in caught.value.message


def test_protection_is_not_checked_under_another_root() -> None:
    config.check_protection("/etc/default/o2cb", fake_stat(0o666, 1000), strict=False)


def test_protection_refuses_a_fifo_even_under_another_root(system: System) -> None:
    os.mkfifo(Path(system.path(PATH)))
    with pytest.raises(ConfigError, match="not a regular file"):
        config.load(system)  # and it did not block on the fifo


def test_strict_modes_only_for_the_real_root(tmp_path: Path) -> None:
    assert config.strict_modes(System(root="/"))
    assert not config.strict_modes(System(root=str(tmp_path)))


def test_real_root_refuses_a_world_writable_file(tmp_path: Path) -> None:
    real = tmp_path / "o2cb"
    real.write_text("O2CB_ENABLED=true\n")
    real.chmod(0o666)
    with pytest.raises(ConfigError) as caught:
        config.load(System(root="/"), str(real))
    assert "refusing to use it" in caught.value.message
    assert caught.value.exit_code == 6
    real.chmod(0o644)
    if os.geteuid() == 0:
        assert config.load(System(root="/"), str(real)).enabled is True


# -- writing ------------------------------------------------------------------------------


def test_enable_on_a_new_file_starts_from_the_sample(system: System) -> None:
    assert config.set_enabled(system, PATH, True) is True
    expected = config.sample_text().replace("#O2CB_ENABLED=false", "O2CB_ENABLED=true")
    real = Path(system.path(PATH))
    assert real.read_text() == expected
    assert stat.S_IMODE(real.stat().st_mode) == 0o644
    assert config.load(system) == Settings(PATH, enabled=True)


def test_write_is_0644_whatever_the_umask_and_old_mode(system: System) -> None:
    real = put(system, "O2CB_ENABLED=false\n")
    real.chmod(0o600)
    old = os.umask(0o077)
    try:
        config.set_enabled(system, PATH, True)
    finally:
        os.umask(old)
    assert stat.S_IMODE(real.stat().st_mode) == 0o644


def test_unchanged_value_is_not_written(system: System, capsys: pytest.CaptureFixture) -> None:
    real = put(system, 'O2CB_ENABLED="true"\n')
    before = real.stat()
    assert config.set_enabled(system, PATH, True) is False
    after = real.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert capsys.readouterr().out == ""


def test_enable_reports_the_write_like_the_reference(
    system: System, capsys: pytest.CaptureFixture
) -> None:
    put(system, "O2CB_ENABLED=false\n")
    assert config.set_enabled(system, PATH, True) is True
    assert capsys.readouterr().out == "Writing O2CB configuration: OK\n"
    assert config.set_enabled(system, PATH, False) is True
    assert Path(system.path(PATH)).read_text() == "O2CB_ENABLED=false\n"


EDITED_BEFORE = """\
#!/bin/sh - not really, but harmless
# Site settings   (keep this comment)

O2CB_ENABLED=false   # was turned off for maintenance
\tO2CB_STACK="o2cb"
MY_SITE_KEY='value with spaces'

O2CB_HEARTBEAT_THRESHOLD=31
# trailing comment
"""

EDITED_AFTER = """\
#!/bin/sh - not really, but harmless
# Site settings   (keep this comment)

O2CB_ENABLED=true   # was turned off for maintenance
\tO2CB_STACK="pcmk"
MY_SITE_KEY='value with spaces'

O2CB_HEARTBEAT_THRESHOLD=31
# trailing comment

# O2CB_IDLE_TIMEOUT_MS: {idle}
O2CB_IDLE_TIMEOUT_MS=45000
"""


def test_save_edits_only_changed_lines(system: System) -> None:
    put(system, EDITED_BEFORE)
    settings = config.load(system)
    changed = Settings(PATH, enabled=True, stack="pcmk", idle_timeout_ms=45000)
    assert config.save(system, changed) is True
    idle = config.OPTION_BY_KEY["O2CB_IDLE_TIMEOUT_MS"].description
    assert Path(system.path(PATH)).read_text() == EDITED_AFTER.format(idle=idle)
    assert config.load(system) == changed
    assert config.save(system, changed) is False
    assert settings.enabled is False


def test_dry_run_writes_nothing(system: System) -> None:
    real = put(system, "O2CB_ENABLED=false\n")
    dry = System(root=system.root, dry_run=True)
    shown = io.StringIO()
    wrote = []

    def write() -> None:
        wrote.append(config.update(dry, PATH, {"O2CB_ENABLED": "true"}))

    Planner(dry, Reporter(out=shown)).add("Writing", write)
    assert wrote == [True]
    assert real.read_bytes() == b"O2CB_ENABLED=false\n"
    assert shown.getvalue() == f"Writing: dry run\n  would write {PATH}\n"


OLD = b"# old file\nO2CB_ENABLED=false\nO2CB_STACK=o2cb\n"


def leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name != "o2cb")


def test_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    system = System(root=str(tmp_path))
    with pytest.raises(O2cbError) as caught:
        config.update(system, PATH, {"O2CB_ENABLED": "true"})
    assert caught.value.exit_code == 1
    assert "Unable to write the driver configuration /etc/default/o2cb" in caught.value.message
    assert "/etc/default does not exist" in caught.value.message
    assert not (tmp_path / "etc").exists()


def test_enable_into_missing_directory_reports_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    system = System(root=str(tmp_path))
    with pytest.raises(StepFailed) as caught:
        config.set_enabled(system, PATH, True)
    assert caught.value.exit_code == 1
    out, err = capsys.readouterr()
    assert out == "Writing O2CB configuration: Failed\n"
    assert "Unable to write the driver configuration" in err


@pytest.mark.parametrize(
    ("target", "code"),
    [("fsync", errno.ENOSPC), ("replace", errno.EROFS), ("fchmod", errno.EPERM)],
)
def test_failed_write_leaves_old_file_byte_for_byte(
    system: System, monkeypatch: pytest.MonkeyPatch, target: str, code: int
) -> None:
    real = put(system, OLD)

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, target, refuse)
    with pytest.raises(O2cbError) as caught:
        config.update(system, PATH, {"O2CB_ENABLED": "true"})
    monkeypatch.undo()
    assert caught.value.exit_code == 1
    assert os.strerror(code) in caught.value.message
    assert real.read_bytes() == OLD
    assert leftovers(real.parent) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_leaves_old_file(system: System) -> None:
    real = put(system, OLD)
    real.parent.chmod(0o555)
    try:
        with pytest.raises(O2cbError, match="Permission denied"):
            config.update(system, PATH, {"O2CB_ENABLED": "true"})
    finally:
        real.parent.chmod(0o755)
    assert real.read_bytes() == OLD


def test_read_only_mount_leaves_old_file(system: System, tmp_path: Path) -> None:
    """A real read-only bind mount, when this test may make one (root, unshare)."""
    real = put(system, OLD)
    script = (
        "set -e; mount --bind \"$1\" \"$1\"; mount -o remount,bind,ro \"$1\"; echo mounted;"
        f" {sys.executable} -c 'import sys; from o2cb_init import config;"
        " from o2cb_init.system import System;"
        f" config.update(System(root=sys.argv[1]), \"{PATH}\", {{\"O2CB_ENABLED\": \"true\"}})'"
        " \"$2\""
    )
    try:
        result = subprocess.run(
            ["unshare", "-m", "sh", "-c", script, "sh", str(real.parent), str(tmp_path)],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if "mounted" not in result.stdout:
        pytest.skip(f"cannot make a read-only mount here: {result.stderr.strip()}")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr
    assert real.read_bytes() == OLD


# -- round trip (property) -----------------------------------------------------------------

VALID = {
    "O2CB_ENABLED": st.sampled_from(["true", "false"]),
    "O2CB_STACK": st.sampled_from(list(config.STACKS)),
    "O2CB_BOOTCLUSTER": st.from_regex(r"[A-Za-z0-9]{0,16}", fullmatch=True),
    "O2CB_HEARTBEAT_THRESHOLD": st.integers(7, 10_000).map(str),
    "O2CB_IDLE_TIMEOUT_MS": st.integers(30_001, 10**6).map(str),
    "O2CB_KEEPALIVE_DELAY_MS": st.integers(1000, 29_999).map(str),
    "O2CB_RECONNECT_DELAY_MS": st.integers(2000, 10**6).map(str),
}
comment_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30
)
unknown_key = st.from_regex(r"X_[A-Z0-9_]{1,10}", fullmatch=True)
word = st.from_regex(r"[A-Za-z0-9_./:-]{0,12}", fullmatch=True)
quote = st.sampled_from(["", '"', "'"])
spacing = st.sampled_from(["", "  # note", "\t#", " "])


@st.composite
def config_files(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A valid file: known keys (some), unknown keys, comments, blank lines, shuffled."""
    lines: list[str] = []
    values: dict[str, str] = {}
    for key in draw(st.lists(st.sampled_from(list(VALID)), unique=True)):
        value = draw(VALID[key])
        values[key] = value
        q = draw(quote)
        lines.append(f"{key}={q}{value}{q}{draw(spacing)}")
    for key in draw(st.lists(unknown_key, unique=True, max_size=4)):
        q = draw(quote)
        lines.append(f"{key}={q}{draw(word)}{q}{draw(spacing)}")
    lines += ["#" + draw(comment_text) for _ in range(draw(st.integers(0, 4)))]
    lines += ["" for _ in range(draw(st.integers(0, 3)))]
    lines = draw(st.permutations(lines))
    return "".join(line + "\n" for line in lines), values


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(
    generated=config_files(),
    changes=st.dictionaries(st.sampled_from(list(VALID)), st.just(None)).flatmap(
        lambda keys: st.fixed_dictionaries({key: VALID[key] for key in keys})
    ),
)
def test_read_modify_write_keeps_everything_else(
    tmp_path: Path, generated: tuple[str, dict[str, str]], changes: dict[str, str]
) -> None:
    text, values = generated
    system = System(root=str(tmp_path))
    put(system, text)
    before = config.read(system)
    expected_settings = config.load(system)
    wrote = config.update(system, PATH, changes)
    after_text = Path(system.path(PATH)).read_text()
    after = config.read(system)

    really_changed = {
        key: value for key, value in changes.items()
        if config.parse_value(key, value) != config.parse_value(key, values.get(key, ""))
    }
    assert wrote == bool(really_changed)
    if not really_changed:
        assert after_text == text
        return
    # every line of the old file is still there, in order, unless its key changed
    old_lines = text.splitlines()
    new_lines = after_text.splitlines()
    for index, line in enumerate(old_lines):
        entry = before.entries.get(line.split("=", 1)[0].strip()) if "=" in line else None
        if entry is not None and entry.index == index and entry.key in really_changed:
            assert new_lines[index] != line
        else:
            assert new_lines[index] == line
    # the values are the new ones; unknown keys keep theirs
    for key, entry in before.entries.items():
        if key not in really_changed:
            assert after.get(key) == entry.value
    fields = {config.OPTION_BY_KEY[k].field: config.parse_value(k, v) for k, v in changes.items()}
    from o2cb_init.records import replace

    assert config.load(system) == replace(expected_settings, **fields)
    # and a second identical write changes nothing
    assert config.update(system, PATH, changes) is False


# -- crash safety ------------------------------------------------------------------------------

WRITER = """
import sys
from o2cb_init import config
from o2cb_init.report import Reporter
from o2cb_init.system import System
system = System(root=sys.argv[1])
print("ready", flush=True)
enabled = True
while True:
    config.update(system, "{path}", {{"O2CB_ENABLED": "true" if enabled else "false"}})
    enabled = not enabled
"""


def test_killed_writer_leaves_old_or_new_file_whole(tmp_path: Path) -> None:
    system = System(root=str(tmp_path))
    # a big file makes a torn write likely if writes were not atomic
    padding = "".join(f"# padding line {n:05d} {'x' * 60}\n" for n in range(3000))
    versions = {
        (padding + f"O2CB_ENABLED={value}\n").encode() for value in ("true", "false")
    }
    put(system, padding + "O2CB_ENABLED=false\n")
    real = Path(system.path(PATH))
    rng = random.Random(20240601)
    deadline = time.monotonic() + 12
    kills = 0
    while time.monotonic() < deadline and kills < 40:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER.format(path=PATH), str(tmp_path)],
            stdout=subprocess.PIPE,
            cwd=REPO,
        )
        assert writer.stdout is not None
        assert writer.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0, 0.05))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        kills += 1
        assert real.read_bytes() in versions
        assert config.load(system).path == PATH
    assert kills >= 10
