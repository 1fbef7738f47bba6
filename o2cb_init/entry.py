"""The command's entry (`o2cb.init`, `python3 -m o2cb_init`): the verbs and how they run.

Importing click costs more than the rest of a `status`, which runs at every
boot and by monitoring.  So `main` reads the plain command lines of the
init verbs itself: global options, then a verb of `VERBS`, its CLUSTER and
(status) `--json`, each written as click would accept it and each value
valid.  Anything else (help, --version, an error, configure, a new verb)
goes to click's parser in cli.py, which reports it.  Both paths run a verb
through `run` with the same `Session`: what a verb does, prints and exits
with is the same whichever parsed it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from .context import Context
    from .system import System

LINE_MAX = 400  # no error line is longer, whatever value it quotes
PROGRAM = "o2cb"


class Session:
    """What the global options decide, shared by every verb."""

    __slots__ = ("system", "config_path")

    def __init__(self, system: System, config_path: str | None) -> None:
        self.system = system
        self.config_path = config_path

    @classmethod
    def from_options(cls, root: str, config_path: str | None, verbose: bool,
                     dry_run: bool) -> Session:
        from .system import System

        root = os.path.abspath(root)
        if config_path and root == "/":
            config_path = os.path.abspath(config_path)
        return cls(System(root=root, dry_run=dry_run, verbose=verbose), config_path)

    def context(self, observed: bool = False, warn: bool = False) -> Context:
        """The verb's context; ``observed``: without a valid config, act on what runs
        (``warn``: and say on stderr why, as status does before what the kernel runs)."""
        from . import config
        from .context import Context
        from .errors import ConfigError, shown
        from .report import Reporter

        try:
            settings = config.load(self.system, self.config_path)
        except ConfigError as error:
            if not observed:
                raise
            if warn:
                echo_error(f"o2cb: {shown(error.message, LINE_MAX)}; showing what the kernel"
                           " runs")
            else:
                self.system.probe(f"{error.message}; acting on what the kernel runs")
            from .observed import observed_settings

            path = self.config_path or config.locate(self.system)
            return Context(self.system, observed_settings(self.system, path), Reporter(),
                           observed=True)
        return Context(self.system, settings, Reporter())

    def require_root(self, verb: str) -> None:
        """Changing the real machine needs root; a --root tree does not."""
        from .errors import NotRootError

        if self.system.root == "/" and not self.system.is_root_user():
            raise NotRootError(f"{verb}: must be run as root")

    def apply(self, enabled: bool) -> int:
        """After a configuration change: start the stack if enabled, else stop it."""
        from . import service

        context = self.context()
        return service.start(context, None) if enabled else service.stop(context, None)


def echo_error(text: str) -> None:
    """TEXT as a line on stderr, as click.echo(err=True) writes it.

    click only differs for text that is not plain ASCII (its own choice of
    encoding) or holds an escape sequence (stripped when not a terminal):
    that text goes through click itself.
    """
    if text.isascii() and "\x1b" not in text:
        sys.stderr.write(f"{text}\n")
        sys.stderr.flush()
        return
    import click

    click.echo(text, err=True)


def fail(message: str, code: int) -> NoReturn:
    from .errors import shown

    echo_error(f"o2cb: {shown(message, LINE_MAX)}")
    sys.exit(code)


def run(session: Session, action: Callable[[Session], int], verb: str,
        changes: bool = True) -> NoReturn:
    """Run a verb and exit with its code; failures become one line on stderr."""
    from .errors import ExitCode, O2cbError, StepFailed

    try:
        if changes:
            session.require_root(verb)
        code = action(session)
    except StepFailed as error:  # already reported by its step
        sys.exit(error.exit_code)
    except O2cbError as error:
        fail(error.message, error.exit_code)
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        fail(f"{verb}: {where}{error.strerror or error}", ExitCode.FAILURE)
    except KeyboardInterrupt:
        fail(f"{verb}: interrupted", ExitCode.FAILURE)
    sys.exit(code)


def _service():  # type: ignore[no-untyped-def]
    from . import service

    return service


def _set_enabled(session: Session, enabled: bool) -> int:
    from . import config

    path = session.config_path or config.locate(session.system)
    config.set_enabled(session.system, path, enabled)
    return session.apply(enabled)


class Verb:
    """An init verb: whether it takes CLUSTER, whether it changes the machine, what it runs."""

    __slots__ = ("cluster", "changes", "action")

    def __init__(self, cluster: bool, changes: bool,
                 action: Callable[[Session, str | None, bool], int]) -> None:
        self.cluster = cluster
        self.changes = changes
        self.action = action


# The action gets the session, CLUSTER (None if not given) and --json (status only).
VERBS: dict[str, Verb] = {
    "start": Verb(True, True, lambda s, c, _: _service().start(s.context(), c)),
    "stop": Verb(True, True, lambda s, c, _: _service().stop(s.context(observed=True), c)),
    "restart": Verb(True, True, lambda s, c, _: _service().restart(s.context(), c)),
    "reload": Verb(True, True, lambda s, c, _: _service().reload(s.context(), c)),
    "force-reload": Verb(True, True, lambda s, c, _: _service().reload(s.context(), c)),
    "load": Verb(False, True, lambda s, c, _: _service().load(s.context())),
    "unload": Verb(True, True,
                   lambda s, c, _: _service().unload(s.context(observed=True), c)),
    "online": Verb(True, True, lambda s, c, _: _service().online(s.context(), c)),
    "offline": Verb(True, True,
                    lambda s, c, _: _service().offline(s.context(observed=True), c)),
    "force-offline": Verb(True, True, lambda s, c, _: _service().offline(
        s.context(observed=True), c, force=True)),
    "status": Verb(True, False, lambda s, c, as_json: _service().status(
        s.context(observed=True, warn=True), c, as_json)),
    "online-status": Verb(True, False, lambda s, c, _: _service().online_status(
        s.context(observed=True), c)),
    "enable": Verb(False, True, lambda s, c, _: _set_enabled(s, True)),
    "disable": Verb(False, True, lambda s, c, _: _set_enabled(s, False)),
}


def run_verb(session: Session, name: str, cluster: str | None = None,
             as_json: bool = False) -> NoReturn:
    """Run the verb NAME of `VERBS` and exit with its code."""
    verb = VERBS[name]
    run(session, lambda s: verb.action(s, cluster, as_json), name, changes=verb.changes)


class _Plain:
    """A command line `main` runs without click: the values click would have parsed."""

    __slots__ = ("root", "config_path", "verbose", "dry_run", "verb", "cluster", "as_json")

    def __init__(self) -> None:
        self.root: str | None = None
        self.config_path: str | None = None
        self.verbose = self.dry_run = self.as_json = False
        self.verb = ""
        self.cluster: str | None = None


_GLOBAL_VALUES = {"--root": "root", "--config": "config_path"}
_GLOBAL_FLAGS = {"-v": "verbose", "--verbose": "verbose", "--dry-run": "dry_run"}


def plain(args: list[str], environ: Mapping[str, str]) -> _Plain | None:
    """The command line ARGS as click would parse it, if it is a plain one; else None.

    Plain: only the options below, each spelled out, values that click's
    callbacks accept, and no shell completion asked for.  Whatever is not
    plain is left to click, which parses it, or reports it, as it always has.
    """
    if f"_{PROGRAM.upper()}_COMPLETE" in environ or environ.get("O2CB_ROOT") == "":
        return None
    line = _Plain()
    index = 0
    while index < len(args) and args[index].startswith("-"):
        word = args[index]
        name, equals, value = word.partition("=")
        if name in _GLOBAL_VALUES:
            if not equals:
                index += 1
                if index == len(args):
                    return None
                value = args[index]
            if value.startswith("-") or not value:
                return None
            setattr(line, _GLOBAL_VALUES[name], value)
        elif word in _GLOBAL_FLAGS:
            setattr(line, _GLOBAL_FLAGS[word], True)
        else:
            return None
        index += 1
    if index == len(args) or args[index] not in VERBS:
        return None
    line.verb = args[index]
    verb = VERBS[line.verb]
    for word in args[index + 1:]:
        if word == "--json" and line.verb == "status":
            line.as_json = True
        elif word.startswith("-") or not verb.cluster or line.cluster is not None:
            return None
        else:
            line.cluster = word
    if line.root is None:
        line.root = environ.get("O2CB_ROOT") or "/"
    if not os.path.isdir(line.root):
        return None
    if line.cluster is not None:
        from .config import valid_cluster_name

        if not valid_cluster_name(line.cluster):
            return None
    return line


def main() -> None:
    """Run the command line: a plain one here, any other through click (cli.py)."""
    line = plain(sys.argv[1:], os.environ)
    if line is None:
        from .cli import main as click_main

        click_main()
        return
    try:
        assert line.root is not None
        session = Session.from_options(line.root, line.config_path, line.verbose,
                                       line.dry_run)
        run_verb(session, line.verb, line.cluster, line.as_json)
    except (EOFError, KeyboardInterrupt):  # as click's main reports them
        echo_error("")
        echo_error("Aborted!")
        sys.exit(1)
    except BrokenPipeError:  # as click's main: exit 1, and no error at the final flush
        import contextlib

        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, stream.fileno())
        sys.exit(1)
