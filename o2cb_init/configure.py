"""`o2cb configure`: ask the on-boot questions, write the config file, start or stop.

The questions, their order and wording are the reference script's: each
shows the current value in brackets and Enter keeps it.  An invalid answer
is refused with its reason on stderr and the question is asked again.
Options answer questions in advance; with --non-interactive (-y) nothing is
asked and unanswered questions keep their current values.

The CLI registers the command with ``cli.add_command(configure)``.  It
expects ``ctx.obj`` to have ``system`` and ``config_path``, and optionally
``apply(enabled) -> exit code`` (start or stop after writing) and
``require_root(verb)``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NoReturn

import click

from . import config
from .config import OPTION_BY_KEY, Settings, set_enabled
from .errors import ExitCode, InvalidValueError, O2cbError, StepFailed, shown
from .system import System

__all__ = ["configure", "run", "set_enabled", "QUESTIONS", "Aborted"]

INTRO = """\
Configuring the O2CB driver.

This will configure the on-boot properties of the O2CB driver.
The following questions will determine whether the driver is loaded on
boot.  The current values will be shown in brackets ('[]').  Hitting
<ENTER> without typing an answer will keep that current value.  Ctrl-C
will abort.
"""


class Aborted(Exception):
    """Ctrl-C or end of input while a question was waiting."""


def _answer_enabled(text: str) -> bool:
    answer = text.lower()
    if answer in ("y", "yes"):
        return True
    if answer in ("n", "no"):
        return False
    raise ValueError(f"Invalid answer: {shown(text)}")


def _answer_cluster(text: str) -> str:
    return "" if text == "none" else config.parse_cluster(text)


def _number(key: str) -> Callable[[str], object]:
    option = OPTION_BY_KEY[key]
    return lambda text: config.parse_number(option, text)


@dataclass(frozen=True)
class Question:
    key: str
    field: str
    option: str  # the command-line option that answers it in advance
    prompt: Callable[[Settings], str]
    interpret: Callable[[str], object]  # ValueError with the reason on a bad answer


def _timeout_prompt(key: str) -> Callable[[Settings], str]:
    option = OPTION_BY_KEY[key]
    return lambda s: (
        f"Specify {option.name} (>={option.minimum}) [{getattr(s, option.field)}]: "
    )


QUESTIONS: tuple[Question, ...] = (
    Question("O2CB_ENABLED", "enabled", "--enable/--disable",
             lambda s: f"Load O2CB driver on boot (y/n) [{'y' if s.enabled else 'n'}]: ",
             _answer_enabled),
    Question("O2CB_STACK", "stack", "--stack",
             lambda s: f"Cluster stack backing O2CB [{s.stack}]: ",
             config.parse_stack),
    Question("O2CB_BOOTCLUSTER", "bootcluster", "--cluster",
             lambda s: f'Cluster to start on boot (Enter "none" to clear) [{s.bootcluster}]: ',
             _answer_cluster),
    Question("O2CB_HEARTBEAT_THRESHOLD", "heartbeat_threshold", "--heartbeat-threshold",
             _timeout_prompt("O2CB_HEARTBEAT_THRESHOLD"), _number("O2CB_HEARTBEAT_THRESHOLD")),
    Question("O2CB_IDLE_TIMEOUT_MS", "idle_timeout_ms", "--idle-timeout-ms",
             _timeout_prompt("O2CB_IDLE_TIMEOUT_MS"), _number("O2CB_IDLE_TIMEOUT_MS")),
    Question("O2CB_KEEPALIVE_DELAY_MS", "keepalive_delay_ms", "--keepalive-delay-ms",
             _timeout_prompt("O2CB_KEEPALIVE_DELAY_MS"), _number("O2CB_KEEPALIVE_DELAY_MS")),
    Question("O2CB_RECONNECT_DELAY_MS", "reconnect_delay_ms", "--reconnect-delay-ms",
             _timeout_prompt("O2CB_RECONNECT_DELAY_MS"), _number("O2CB_RECONNECT_DELAY_MS")),
)


ANSWER_MAX = 4096  # longer lines are not answers; read no further than this


def read_answer(prompt: str) -> str:
    """Show PROMPT and read one line; Aborted on end of input or Ctrl-C.

    Every question reads from the same stream object, sys.stdin's byte
    buffer, so the answers piped in after this one stay buffered for the
    next question.  Bytes that are not UTF-8 become U+FFFD, which no
    question accepts.
    """
    click.echo(prompt, nl=False)
    stream = sys.stdin
    if stream is None:
        raise Aborted()
    try:
        raw = getattr(stream, "buffer", None)
        if raw is not None:
            data = raw.readline(ANSWER_MAX)
            tail = data
            while len(tail) == ANSWER_MAX and not tail.endswith(b"\n"):
                tail = raw.readline(ANSWER_MAX)  # the rest of an overlong line
            line = data.decode("utf-8", errors="replace")
        else:
            line = stream.readline()
    except (KeyboardInterrupt, OSError, ValueError):
        raise Aborted() from None
    if not line:
        raise Aborted()
    return line.strip()


def _cross_check(settings: Settings, field: str, fixed: set[str]) -> None:
    """Keepalive below idle timeout, checked when the later of the two is answered.

    A value fixed by an option is checked when the other one is asked.
    """
    if field == "keepalive_delay_ms" or (
        field == "idle_timeout_ms" and "keepalive_delay_ms" in fixed
    ):
        config.check_keepalive(settings.keepalive_delay_ms, settings.idle_timeout_ms)


def ask(settings: Settings, given: dict[str, object], err: Callable[[str], None]) -> Settings:
    """Ask every question not answered by GIVEN (field -> value); the new settings."""
    settings = replace(settings, **given)  # type: ignore[arg-type]
    fixed = set(given)
    for question in QUESTIONS:
        if question.field in fixed:
            continue
        while True:
            answer = read_answer(question.prompt(settings))
            try:
                value = (
                    getattr(settings, question.field)
                    if answer == ""
                    else question.interpret(answer)
                )
                candidate = replace(settings, **{question.field: value})  # type: ignore[arg-type]
                _cross_check(candidate, question.field, fixed)
            except ValueError as error:
                err(str(error))
                continue
            settings = candidate
            break
    return settings


def interpret_options(options: dict[str, object]) -> dict[str, object]:
    """Typed values of the options given (field -> value); InvalidValueError (exit 2)."""
    given: dict[str, object] = {}
    for question in QUESTIONS:
        raw = options.get(question.field)
        if raw is None:
            continue
        if isinstance(raw, bool):
            given[question.field] = raw
            continue
        text = str(raw).strip()
        try:
            if question.field == "bootcluster":
                value: object = "" if text in ("", "none") else config.parse_cluster(text)
            else:
                value = question.interpret(text)
        except ValueError as error:
            raise InvalidValueError(f"{question.option.split('/')[0]}: {error}") from None
        given[question.field] = value
    return given


def run(
    system: System,
    path: str | None,
    options: dict[str, object],
    interactive: bool,
    apply: Callable[[bool], int] | None = None,
    require_root: Callable[[str], None] | None = None,
) -> int:
    """configure, start to end; the exit code.  O2cbError for failures not yet reported."""
    given = interpret_options(options)
    if require_root is not None:
        require_root("configure")
    path = path or config.locate(system)
    current, problems = config.current(system, path)
    for problem in problems:
        click.echo(f"o2cb: {problem}; the default replaces it", err=True)
    if interactive:
        click.echo(INTRO)
        try:
            settings = ask(current, given, lambda message: click.echo(message, err=True))
        except (Aborted, KeyboardInterrupt):
            click.echo("")
            raise O2cbError("configure aborted: nothing was written") from None
    else:
        settings = replace(current, **given)  # type: ignore[arg-type]
    try:
        config.check_keepalive(settings.keepalive_delay_ms, settings.idle_timeout_ms)
    except ValueError as error:
        raise InvalidValueError(str(error)) from None
    config.save_reported(system, settings, path)
    if apply is None:
        return ExitCode.OK
    return apply(settings.enabled)


def _fail(ctx: click.Context, message: str, code: int) -> NoReturn:
    click.echo(f"o2cb: {message}", err=True)
    ctx.exit(int(code))
    raise AssertionError("unreachable")  # ctx.exit raises


@click.command()
@click.option("--enable/--disable", "enabled", default=None,
              help="Start the cluster stack at boot, or not.")
@click.option("--stack", metavar="NAME", help=f"Cluster stack: {', '.join(config.STACKS)}.")
@click.option("--cluster", "bootcluster", metavar="NAME",
              help="Cluster to start at boot ('none' or '' for none).")
@click.option("--heartbeat-threshold", "heartbeat_threshold", metavar="N",
              help="Heartbeat dead threshold (>=7).")
@click.option("--idle-timeout-ms", "idle_timeout_ms", metavar="MS",
              help="Network idle timeout in ms (>=5000).")
@click.option("--keepalive-delay-ms", "keepalive_delay_ms", metavar="MS",
              help="Network keepalive delay in ms (>=1000, below the idle timeout).")
@click.option("--reconnect-delay-ms", "reconnect_delay_ms", metavar="MS",
              help="Network reconnect delay in ms (>=2000).")
@click.option("-y", "--non-interactive", "non_interactive", is_flag=True,
              help="Ask nothing: values not given keep their current setting.")
@click.pass_context
def configure(
    ctx: click.Context,
    enabled: bool | None,
    stack: str | None,
    bootcluster: str | None,
    heartbeat_threshold: str | None,
    idle_timeout_ms: str | None,
    keepalive_delay_ms: str | None,
    reconnect_delay_ms: str | None,
    non_interactive: bool,
) -> None:
    """Ask the on-boot questions, write the config file, then start or stop."""
    obj = ctx.obj
    options: dict[str, object] = {
        "enabled": enabled,
        "stack": stack,
        "bootcluster": bootcluster,
        "heartbeat_threshold": heartbeat_threshold,
        "idle_timeout_ms": idle_timeout_ms,
        "keepalive_delay_ms": keepalive_delay_ms,
        "reconnect_delay_ms": reconnect_delay_ms,
    }
    try:
        code = run(
            obj.system,
            getattr(obj, "config_path", None),
            options,
            interactive=not non_interactive,
            apply=getattr(obj, "apply", None),
            require_root=getattr(obj, "require_root", None),
        )
    except StepFailed as error:  # its step already said why
        ctx.exit(int(error.exit_code))
    except O2cbError as error:
        _fail(ctx, error.message, error.exit_code)
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        _fail(ctx, f"configure: {where}{error.strerror or error}", ExitCode.FAILURE)
    ctx.exit(int(code))
