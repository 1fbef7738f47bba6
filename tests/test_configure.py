"""`o2cb configure`: the reference's questions, refusals, aborts and options."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import Result
from clirunner import runner

from o2cb_init import config
from o2cb_init import configure as configure_module
from o2cb_init.configure import configure
from o2cb_init.system import System

REPO = Path(__file__).resolve().parent.parent
PATH = "/etc/default/o2cb"

Q_ENABLED = "Load O2CB driver on boot (y/n) [{}]: "
Q_STACK = "Cluster stack backing O2CB [{}]: "
Q_CLUSTER = 'Cluster to start on boot (Enter "none" to clear) [{}]: '
Q_THRESHOLD = "Specify heartbeat dead threshold (>=7) [{}]: "
Q_IDLE = "Specify network idle timeout in ms (>=5000) [{}]: "
Q_KEEPALIVE = "Specify network keepalive delay in ms (>=1000) [{}]: "
Q_RECONNECT = "Specify network reconnect delay in ms (>=2000) [{}]: "
DEFAULT_PROMPTS = [
    Q_ENABLED.format("n"),
    Q_STACK.format("o2cb"),
    Q_CLUSTER.format(""),
    Q_THRESHOLD.format(31),
    Q_IDLE.format(30000),
    Q_KEEPALIVE.format(2000),
    Q_RECONNECT.format(2000),
]


@dataclass
class Obj:
    system: System
    config_path: str | None = None
    applied: list[bool] = field(default_factory=list)
    apply_code: int = 0

    def apply(self, enabled: bool) -> int:
        self.applied.append(enabled)
        return self.apply_code


@dataclass
class NoApply:
    system: System
    config_path: str | None = None


def make_cli(obj: object) -> click.Group:
    @click.group()
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        ctx.obj = obj

    cli.add_command(configure)
    return cli


@pytest.fixture
def obj(tmp_path: Path) -> Obj:
    (tmp_path / "etc/default").mkdir(parents=True)
    return Obj(System(root=str(tmp_path)))


def invoke(obj: object, args: list[str], answers: list[str] | None = None) -> Result:
    text = None if answers is None else "".join(a + "\n" for a in answers)
    return runner().invoke(make_cli(obj), ["configure", *args], input=text)


def written(obj: Obj) -> str:
    return Path(obj.system.path(PATH)).read_text()


def expected_file(**values: str) -> str:
    text = config.sample_text()
    for key, value in values.items():
        default = config.OPTION_BY_KEY[key].default
        text = text.replace(f"#{key}={default}\n", f"{key}={value}\n")
    return text


ALL_DEFAULTS = {option.key: option.default for option in config.OPTIONS if option.asked}


def prompts_in(output: str) -> list[str]:
    """The questions in the order they were asked."""
    found = []
    position = 0
    questions = [q.split("[")[0] for q in DEFAULT_PROMPTS]
    while True:
        hits = [(output.find(q, position), q) for q in questions]
        hits = [(at, q) for at, q in hits if at >= 0]
        if not hits:
            return found
        at, question = min(hits)
        end = output.index("]: ", at) + 3
        found.append(output[at:end])
        position = end


# -- interactive -----------------------------------------------------------------------


def test_new_file_from_answers_then_start(obj: Obj) -> None:
    result = invoke(obj, [], ["y", "pcmk", "web1", "61", "60000", "5000", "4000"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Configuring the O2CB driver.\n")
    assert prompts_in(result.stdout) == DEFAULT_PROMPTS
    assert result.stdout.endswith("Writing O2CB configuration: OK\n")
    assert written(obj) == expected_file(
        O2CB_ENABLED="true",
        O2CB_STACK="pcmk",
        O2CB_BOOTCLUSTER="web1",
        O2CB_HEARTBEAT_THRESHOLD="61",
        O2CB_IDLE_TIMEOUT_MS="60000",
        O2CB_KEEPALIVE_DELAY_MS="5000",
        O2CB_RECONNECT_DELAY_MS="4000",
    )
    assert obj.applied == [True]


def test_all_enter_on_new_file_writes_every_key_then_stops(obj: Obj) -> None:
    result = invoke(obj, [], [""] * 7)
    assert result.exit_code == 0, result.output
    assert written(obj) == expected_file(**ALL_DEFAULTS)
    assert obj.applied == [False]


EXISTING = """\
# my site
O2CB_ENABLED=true
O2CB_STACK=pcmk
O2CB_BOOTCLUSTER=web1   # the web farm
O2CB_HEARTBEAT_THRESHOLD=61
O2CB_IDLE_TIMEOUT_MS=60000
O2CB_KEEPALIVE_DELAY_MS=5000
O2CB_RECONNECT_DELAY_MS=4000
SITE_KEY=kept
"""


def test_enter_keeps_current_values_and_file_untouched(obj: Obj) -> None:
    real = Path(obj.system.path(PATH))
    real.write_text(EXISTING)
    inode = real.stat().st_ino
    result = invoke(obj, [], [""] * 7)
    assert result.exit_code == 0, result.output
    assert prompts_in(result.stdout) == [
        Q_ENABLED.format("y"),
        Q_STACK.format("pcmk"),
        Q_CLUSTER.format("web1"),
        Q_THRESHOLD.format(61),
        Q_IDLE.format(60000),
        Q_KEEPALIVE.format(5000),
        Q_RECONNECT.format(4000),
    ]
    assert real.read_text() == EXISTING
    assert real.stat().st_ino == inode
    assert obj.applied == [True]


def test_changes_edit_only_their_lines_and_none_clears(obj: Obj) -> None:
    Path(obj.system.path(PATH)).write_text(EXISTING)
    result = invoke(obj, [], ["n", "", "none", "", "", "", "2000"])
    assert result.exit_code == 0, result.output
    assert written(obj) == (
        EXISTING.replace("O2CB_ENABLED=true", "O2CB_ENABLED=false")
        .replace("O2CB_BOOTCLUSTER=web1", "O2CB_BOOTCLUSTER=")
        .replace("O2CB_RECONNECT_DELAY_MS=4000", "O2CB_RECONNECT_DELAY_MS=2000")
    )
    assert obj.applied == [False]


REFUSALS = [
    # (question index, bad answer, reason on stderr)
    (0, "maybe", "Invalid answer: maybe"),
    (1, "foo", "Invalid cluster stack: foo"),
    (1, "heartbeat", "Invalid cluster stack: heartbeat"),
    (2, "my.cluster", "Invalid cluster name: my.cluster"),
    (2, "a" * 17, "Invalid cluster name"),
    (3, "abc", "Invalid heartbeat dead threshold value: abc"),
    (3, "6", "heartbeat dead threshold cannot be less than 7"),
    (3, "-1", "Invalid heartbeat dead threshold value: -1"),
    (4, "4999", "network idle timeout in ms cannot be less than 5000"),
    (4, "30s", "Invalid network idle timeout in ms value: 30s"),
    (5, "999", "network keepalive delay in ms cannot be less than 1000"),
    (5, "30000", "must be less than the network idle timeout in ms (30000)"),
    (6, "1999", "network reconnect delay in ms cannot be less than 2000"),
    (6, "$(reboot)", "Invalid network reconnect delay in ms value: $(reboot)"),
]


@pytest.mark.parametrize(("index", "bad", "reason"), REFUSALS)
def test_invalid_answer_is_refused_and_asked_again(
    obj: Obj, index: int, bad: str, reason: str
) -> None:
    answers = [""] * 7
    answers.insert(index, bad)
    result = invoke(obj, [], answers)
    assert result.exit_code == 0, result.output
    prompts = prompts_in(result.stdout)
    assert prompts == DEFAULT_PROMPTS[: index + 1] + DEFAULT_PROMPTS[index:]
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert written(obj) == expected_file(**ALL_DEFAULTS)


def test_keepalive_must_stay_below_the_new_idle_timeout(obj: Obj) -> None:
    result = invoke(obj, [], ["", "", "", "", "6000", "6000", "7000", "5999", ""])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("must be less than the network idle timeout in ms (6000)") == 2
    settings = config.load(obj.system)
    assert (settings.idle_timeout_ms, settings.keepalive_delay_ms) == (6000, 5999)


def test_current_keepalive_kept_by_enter_is_checked_too(obj: Obj) -> None:
    Path(obj.system.path(PATH)).write_text("O2CB_KEEPALIVE_DELAY_MS=9000\n")
    result = invoke(obj, [], ["", "", "", "", "8000", "", "7000", ""])
    assert result.exit_code == 0, result.output
    assert "(9000) must be less than the network idle timeout in ms (8000)" in result.stderr
    assert config.load(obj.system).keepalive_delay_ms == 7000


@pytest.mark.parametrize("answered", range(7))
def test_end_of_input_aborts_and_writes_nothing(obj: Obj, answered: int) -> None:
    result = invoke(obj, [], ["y", "pcmk", "web1", "61", "60000", "5000"][:answered])
    assert result.exit_code == 1
    assert "configure aborted: nothing was written" in result.stderr
    assert not Path(obj.system.path(PATH)).exists()
    assert obj.applied == []


def test_end_of_input_leaves_existing_file_byte_for_byte(obj: Obj) -> None:
    real = Path(obj.system.path(PATH))
    real.write_text(EXISTING)
    result = invoke(obj, [], ["n", "o2cb", "none"])
    assert result.exit_code == 1
    assert real.read_text() == EXISTING
    assert obj.applied == []


def test_ctrl_c_aborts_and_writes_nothing(obj: Obj, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def answer(prompt: str) -> str:
        asked.append(prompt)
        if len(asked) == 3:
            raise KeyboardInterrupt
        return "y" if len(asked) == 1 else ""

    monkeypatch.setattr(configure_module, "read_answer", answer)
    result = invoke(obj, [], [])
    assert result.exit_code == 1
    assert "configure aborted" in result.stderr
    assert not Path(obj.system.path(PATH)).exists()
    assert obj.applied == []


SIGINT_SCRIPT = """
import sys, click
from o2cb_init.configure import configure
from o2cb_init.system import System

class Obj:
    system = System(root=sys.argv[1])
    config_path = None

@click.group()
@click.pass_context
def cli(ctx):
    ctx.obj = Obj()

cli.add_command(configure)
cli(["configure"], prog_name="o2cb")
"""


READ = "0"  # x86_64's read(2), as /proc/PID/syscall names it


def process_facts(pid: int) -> str:
    """What the kernel says of a process: its state, signal masks and system call."""
    facts = []
    for name in ("status", "syscall", "wchan"):
        try:
            with open(f"/proc/{pid}/{name}") as handle:
                text = handle.read()
        except OSError as error:
            text = str(error)
        if name == "status":
            text = " ".join(line for line in text.splitlines() if line.startswith(("State", "Sig")))
        facts.append(f"{name}: {text.strip()}")
    return "; ".join(facts)


def wait_until_reading_stdin(pid: int, timeout: float = 20) -> None:
    """Until the process is blocked in read(2) on its stdin, as configure is at its prompt.

    A SIGINT that lands after the prompt is written but before the read
    begins is seen by Python only when the read returns, which it never
    does on a pipe held open: a race of the test, not a case a person at
    the terminal can make."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/syscall") as handle:
                call = handle.read().split()
        except OSError:
            call = []
        if call[:2] == [READ, "0x0"]:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never waited at the prompt: {process_facts(pid)}")


def as_at_a_terminal() -> None:
    """Ctrl-C's default action, as a shell gives it to a command run in the foreground.

    A shell without job control starts a background job with SIGINT and
    SIGQUIT ignored, and a test run started that way hands that on: Python
    then, rightly, keeps SIGINT ignored, and the prompt never sees Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_real_sigint_while_waiting_for_an_answer(obj: Obj, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SIGINT_SCRIPT, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
        preexec_fn=as_at_a_terminal,  # noqa: PLW1509 - the child is exec'd at once
    )
    assert process.stdin and process.stdout and process.stderr
    process.stdin.write(b"y\n")
    process.stdin.flush()
    seen = b""
    deadline = time.monotonic() + 20
    while Q_STACK.format("o2cb").encode() not in seen and time.monotonic() < deadline:
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
    assert Q_STACK.format("o2cb").encode() in seen
    wait_until_reading_stdin(process.pid)
    facts = process_facts(process.pid)
    process.send_signal(signal.SIGINT)
    try:
        assert process.wait(timeout=20) == 1
    except subprocess.TimeoutExpired:
        after = process_facts(process.pid)
        process.kill()
        raise AssertionError(f"no exit on SIGINT; before it: {facts}; after: {after}") from None
    assert b"configure aborted: nothing was written" in process.stderr.read()
    process.stdin.close()
    process.stdout.close()
    process.stderr.close()
    assert not Path(obj.system.path(PATH)).exists()


# -- options ----------------------------------------------------------------------------


ALL_OPTIONS = [
    "--enable", "--stack", "cman", "--cluster", "db", "--heartbeat-threshold", "7",
    "--idle-timeout-ms", "5000", "--keepalive-delay-ms", "1000", "--reconnect-delay-ms", "2001",
]


def test_non_interactive_options_ask_nothing(obj: Obj) -> None:
    result = invoke(obj, ["-y", *ALL_OPTIONS])
    assert result.exit_code == 0, result.output
    assert result.stdout == "Writing O2CB configuration: OK\n"
    assert written(obj) == expected_file(
        O2CB_ENABLED="true",
        O2CB_STACK="cman",
        O2CB_BOOTCLUSTER="db",
        O2CB_HEARTBEAT_THRESHOLD="7",
        O2CB_IDLE_TIMEOUT_MS="5000",
        O2CB_KEEPALIVE_DELAY_MS="1000",
        O2CB_RECONNECT_DELAY_MS="2001",
    )
    assert obj.applied == [True]


def test_the_device_timeout_is_set_by_its_option_and_never_asked(obj: Obj) -> None:
    result = invoke(obj, ["--heartbeat-device-timeout", "90"], ["y", "", "web1", "", "", "", ""])
    assert result.exit_code == 0, result.output
    assert prompts_in(result.stdout) == DEFAULT_PROMPTS
    assert written(obj) == expected_file(
        **{**ALL_DEFAULTS, "O2CB_ENABLED": "true", "O2CB_BOOTCLUSTER": "web1",
           "O2CB_HEARTBEAT_DEVICE_TIMEOUT": "90"},
    )
    refused = invoke(obj, ["-y", "--heartbeat-device-timeout", "241"])
    assert refused.exit_code == 2
    assert "cannot be more than 240" in refused.stderr


def test_non_interactive_keeps_unanswered_values(obj: Obj) -> None:
    Path(obj.system.path(PATH)).write_text(EXISTING)
    result = invoke(obj, ["--non-interactive", "--disable", "--cluster", "none"])
    assert result.exit_code == 0, result.output
    assert written(obj) == EXISTING.replace("ENABLED=true", "ENABLED=false").replace(
        "BOOTCLUSTER=web1", "BOOTCLUSTER="
    )
    assert obj.applied == [False]


def test_options_answer_their_questions_in_interactive_mode(obj: Obj) -> None:
    result = invoke(obj, ["--enable", "--stack", "pcmk"], ["", "", "", "", ""])
    assert result.exit_code == 0, result.output
    assert prompts_in(result.stdout) == DEFAULT_PROMPTS[2:]
    settings = config.load(obj.system)
    assert (settings.enabled, settings.stack) == (True, "pcmk")


def test_keepalive_option_checked_against_the_idle_answer(obj: Obj) -> None:
    result = invoke(obj, ["--keepalive-delay-ms", "8000"], ["", "", "", "", "8000", "9000", ""])
    assert result.exit_code == 0, result.output
    assert "(8000) must be less than the network idle timeout in ms (8000)" in result.stderr
    assert config.load(obj.system).idle_timeout_ms == 9000


BAD_OPTIONS = [
    (["--stack", "foo"], "--stack: Invalid cluster stack: foo"),
    (["--cluster", "bad name"], "--cluster: Invalid cluster name: bad name"),
    (["--heartbeat-threshold", "6"], "heartbeat dead threshold cannot be less than 7"),
    (["--heartbeat-threshold", "x"], "Invalid heartbeat dead threshold value: x"),
    (["--idle-timeout-ms", "4999"], "--idle-timeout-ms: network idle timeout in ms cannot"),
    (["--keepalive-delay-ms", "999"], "cannot be less than 1000"),
    (["--reconnect-delay-ms", "1999"], "cannot be less than 2000"),
    (["--keepalive-delay-ms", "30000"], "must be less than the network idle timeout"),
    (["--idle-timeout-ms", "6000", "--keepalive-delay-ms", "6000"], "must be less than"),
]


@pytest.mark.parametrize(("args", "reason"), BAD_OPTIONS)
def test_invalid_option_is_a_usage_error(obj: Obj, args: list[str], reason: str) -> None:
    result = invoke(obj, ["-y", *args])
    assert result.exit_code == 2
    assert reason in result.stderr
    assert result.stderr.startswith("o2cb: ")
    assert not Path(obj.system.path(PATH)).exists()
    assert obj.applied == []


def test_invalid_option_fails_before_any_question(obj: Obj) -> None:
    result = invoke(obj, ["--stack", "foo"], ["y"] * 7)
    assert result.exit_code == 2
    assert "Load O2CB" not in result.stdout


# -- writing and applying ---------------------------------------------------------------


def test_apply_exit_code_is_the_result(obj: Obj) -> None:
    obj.apply_code = 1
    result = invoke(obj, ["-y", "--enable"])
    assert result.exit_code == 1
    assert obj.applied == [True]
    assert config.load(obj.system).enabled is True


def test_without_apply_configure_only_writes(tmp_path: Path) -> None:
    (tmp_path / "etc/default").mkdir(parents=True)
    plain = NoApply(System(root=str(tmp_path)))
    result = invoke(plain, ["-y", "--enable"])
    assert result.exit_code == 0, result.output
    assert config.load(plain.system).enabled is True


def test_config_path_from_the_cli(obj: Obj) -> None:
    obj.config_path = "/srv/o2cb.conf"
    Path(obj.system.path("/srv")).mkdir()
    result = invoke(obj, ["-y", "--enable"])
    assert result.exit_code == 0, result.output
    assert config.load(obj.system, "/srv/o2cb.conf").enabled is True
    assert not Path(obj.system.path(PATH)).exists()


def test_write_failure_reports_failed_and_does_not_apply(tmp_path: Path) -> None:
    broken = Obj(System(root=str(tmp_path)))  # no /etc/default
    result = invoke(broken, ["-y", "--enable"])
    assert result.exit_code == 1
    assert result.stdout == "Writing O2CB configuration: Failed\n"
    assert "Unable to write the driver configuration" in result.stderr
    assert broken.applied == []


def test_unreadable_existing_file_is_not_configured(obj: Obj) -> None:
    Path(obj.system.path(PATH)).write_text("this is not a config file\n")
    result = invoke(obj, ["-y", "--enable"])
    assert result.exit_code == 6
    assert f"{PATH}:1: expected KEY=value" in result.stderr
    assert written(obj) == "this is not a config file\n"


def test_invalid_value_is_repaired_with_a_warning(obj: Obj) -> None:
    Path(obj.system.path(PATH)).write_text("O2CB_HEARTBEAT_THRESHOLD=3\nO2CB_ENABLED=true\n")
    result = invoke(obj, [], [""] * 7)
    assert result.exit_code == 0, result.output
    assert f"{PATH}:1: O2CB_HEARTBEAT_THRESHOLD" in result.stderr
    assert Q_THRESHOLD.format(31) in result.stdout
    assert written(obj) == "O2CB_HEARTBEAT_THRESHOLD=31\nO2CB_ENABLED=true\n"


def test_set_enabled_is_offered_for_the_enable_and_disable_verbs(obj: Obj) -> None:
    assert configure_module.set_enabled is config.set_enabled
    assert configure_module.set_enabled(obj.system, None, True) is True
    assert configure_module.set_enabled(obj.system, None, True) is False
    assert config.load(obj.system).enabled is True


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "etc/default").mkdir(parents=True)
    dry = Obj(System(root=str(tmp_path), dry_run=True))
    result = invoke(dry, ["-y", "--enable"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Writing O2CB configuration: dry run\n  would write {PATH}\n"
    assert not Path(dry.system.path(PATH)).exists()
