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
from typing import NoReturn

import click

from . import config
from .config import OPTIONS, Option, Settings, set_enabled
from .errors import ExitCode, InvalidValueError, O2cbError, StepFailed
from .records import replace
from .system import System

__all__ = ["configure", "run", "set_enabled", "Aborted"]

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
    for option in OPTIONS:
        if option.field in fixed or not option.asked:
            continue
        while True:
            answer = read_answer(option.prompt(getattr(settings, option.field)))
            try:
                value = (
                    getattr(settings, option.field) if answer == "" else option.parse_answer(answer)
                )
                candidate = replace(settings, **{option.field: value})  # type: ignore[arg-type]
                _cross_check(candidate, option.field, fixed)
            except ValueError as error:
                err(str(error))
                continue
            settings = candidate
            break
    return settings


def interpret_options(options: dict[str, object]) -> dict[str, object]:
    """Typed values of the options given (field -> value); InvalidValueError (exit 2)."""
    given: dict[str, object] = {}
    for option in OPTIONS:
        raw = options.get(option.field)
        if raw is None:
            continue
        try:
            given[option.field] = (
                raw if isinstance(raw, bool) else option.parse_answer(str(raw).strip())
            )
        except ValueError as error:
            raise InvalidValueError(f"{option.flag.split('/')[0]}: {error}") from None
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


def _option_decorator(option: Option) -> Callable[[Callable[..., None]], Callable[..., None]]:
    if "/" in option.flag:  # a yes/no switch
        return click.option(option.flag, option.field, default=None, help=option.description)
    return click.option(option.flag, option.field, metavar=option.metavar,
                        help=option.description)


def _with_options(function: Callable[..., None]) -> Callable[..., None]:
    """One click option per key of the schema, in the order of the questions."""
    for option in reversed(OPTIONS):
        function = _option_decorator(option)(function)
    return function


@click.command()
@_with_options
@click.option("-y", "--non-interactive", "non_interactive", is_flag=True,
              help="Ask nothing: values not given keep their current setting.")
@click.pass_context
def configure(ctx: click.Context, non_interactive: bool, **options: object) -> None:
    """Ask the on-boot questions, write the config file, then start or stop."""
    obj = ctx.obj
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
