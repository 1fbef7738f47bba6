"""The `o2cb` command parsed with click: help, errors and every verb, mapped to LSB exit codes.

entry.py runs the plain command lines of the init verbs without importing
click, and hands every other one to `main` here.  A verb imports what it
uses: `configure` and the reading of what runs without a valid
configuration (observed.py) are imported when needed, so that `status`,
run at every boot and by monitoring, stays lean.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, NoReturn

import click

from . import __version__, config, entry
from .entry import LINE_MAX, Session, fail
from .errors import ExitCode, shown

__all__ = ["LINE_MAX", "Session", "cli", "fail", "main", "run_verb"]


class UsageLine(click.UsageError):
    """A usage error shown as one line on stderr, like every other failure."""

    def __init__(self, error: click.UsageError) -> None:
        super().__init__(error.format_message(), error.ctx)

    def show(self, file: IO[str] | None = None) -> None:
        text = shown(self.format_message(), LINE_MAX)
        text = text if text.endswith((".", "?", ")")) else f"{text}."
        where = self.ctx.command_path if self.ctx else "o2cb"
        click.echo(f"o2cb: {text} Try '{where} --help'.", err=True)


@contextmanager
def usage_lines() -> Iterator[None]:
    try:
        yield
    except click.UsageError as error:
        if isinstance(error, UsageLine):
            raise
        raise UsageLine(error) from None


# Verbs defined in a module of their own, imported only when named (or for --help).
LAZY_VERBS = {"configure": "configure"}


class O2cbGroup(click.Group):
    """Parses the global options and the verbs; usage errors become one line (exit 2)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_VERBS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in LAZY_VERBS:
            module = importlib.import_module(f"{__package__}.{LAZY_VERBS[name]}")
            self.add_command(getattr(module, name))
        return super().get_command(ctx, name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # No verb: the help on stderr and exit 2, whatever click's version does by default.
        if not args and not ctx.resilient_parsing:
            click.echo(ctx.get_help(), err=True)
            ctx.exit(ExitCode.USAGE)
        return super().parse_args(ctx, args)

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with usage_lines():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with usage_lines():
            return super().invoke(ctx)


def run_verb(action: Callable[[Session], int], verb: str, changes: bool = True) -> NoReturn:
    """Run a verb and exit with its code; failures become one line on stderr."""
    entry.run(click.get_current_context().obj, action, verb, changes)


def init_verb(name: str, cluster: str | None = None, as_json: bool = False) -> NoReturn:
    """Run the init verb NAME (entry.VERBS), as a plain command line runs it."""
    entry.run_verb(click.get_current_context().obj, name, cluster, as_json)


@click.group(cls=O2cbGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="o2cb")
@click.option(
    "--root", envvar="O2CB_ROOT", default="/", show_default=True,
    callback=lambda ctx, param, value: _root_directory(value),
    help="Treat DIR as the machine's root: /proc, /sys, /etc, /dlm and /run are read there.",
)
@click.option(
    "--config", "config_path", metavar="FILE",
    help="Configuration file (default: /etc/sysconfig/o2cb, else /etc/default/o2cb).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show every probe and change.")
@click.option("--dry-run", is_flag=True, help="Print the changes instead of making them.")
@click.pass_context
def cli(ctx: click.Context, root: str, config_path: str | None, verbose: bool,
        dry_run: bool) -> None:
    """Bring the OCFS2 cluster stack up and down (the O2CB init script)."""
    ctx.obj = Session.from_options(root, config_path, verbose, dry_run)


def _root_directory(value: str) -> str:
    if not value:
        raise click.BadParameter("an empty string is not a directory")
    if not os.path.isdir(value):
        raise click.BadParameter(f"'{shown(value)}' is not a directory")
    return value


def _cluster_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """CLUSTER names a directory in configfs: refuse anything but a valid name."""
    if value is not None and not config.valid_cluster_name(value):
        raise click.BadParameter(
            f"'{shown(value)}' is not a cluster name ({config.CLUSTER_NAME_RULE})"
        )
    return value


cluster_argument = click.argument("cluster", required=False, callback=_cluster_name)


@cli.command()
@cluster_argument
def start(cluster: str | None) -> None:
    """Load the drivers and bring CLUSTER (default O2CB_BOOTCLUSTER) online, if enabled."""
    init_verb("start", cluster)


@cli.command()
@cluster_argument
def stop(cluster: str | None) -> None:
    """Take CLUSTER offline and unload the drivers; refused while a volume is mounted."""
    init_verb("stop", cluster)


@cli.command()
@cluster_argument
def restart(cluster: str | None) -> None:
    """Stop, then start."""
    init_verb("restart", cluster)


@cli.command()
@cluster_argument
def reload(cluster: str | None) -> None:
    """Apply cluster.conf's added and removed nodes and regions to the running CLUSTER."""
    init_verb("reload", cluster)


@cli.command("force-reload")
@cluster_argument
def force_reload(cluster: str | None) -> None:
    """Same as reload: never a restart."""
    init_verb("force-reload", cluster)


@cli.command()
@cluster_argument
@click.option("--json", "as_json", is_flag=True, help="Print every finding as JSON.")
def check(cluster: str | None, as_json: bool) -> None:
    """Report what would stop CLUSTER or trouble it, and what to do; change nothing."""

    def action(session: Session) -> int:
        from .check import check as run_checks

        return run_checks(session.context, cluster, as_json, click.echo)

    run_verb(action, "check", changes=False)


@cli.command()
def load() -> None:
    """Load the drivers and mount configfs and ocfs2_dlmfs."""
    init_verb("load")


@cli.command()
@cluster_argument
def unload(cluster: str | None) -> None:
    """Take CLUSTER offline, then unload every driver nothing else uses."""
    init_verb("unload", cluster)


@cli.command()
@cluster_argument
def online(cluster: str | None) -> None:
    """Load the drivers and bring CLUSTER online."""
    init_verb("online", cluster)


@cli.command()
@cluster_argument
def offline(cluster: str | None) -> None:
    """Take CLUSTER offline; refused while a heartbeat region is active."""
    init_verb("offline", cluster)


@cli.command("force-offline")
@cluster_argument
def force_offline(cluster: str | None) -> None:
    """Take CLUSTER offline past failing steps; still refused while a heartbeat is active."""
    init_verb("force-offline", cluster)


@cli.command()
@cluster_argument
@click.option("--json", "as_json", is_flag=True, help="Print the facts as one JSON object.")
def status(cluster: str | None, as_json: bool) -> None:
    """Report drivers, mounts and CLUSTER; exit 0 when online, 3 when not."""
    init_verb("status", cluster, as_json)


@cli.command("online-status")
@cluster_argument
def online_status(cluster: str | None) -> None:
    """Print online or offline; exit 0 or 1."""
    init_verb("online-status", cluster)


@cli.command()
def enable() -> None:
    """Set O2CB_ENABLED=true, then start."""
    init_verb("enable")


@cli.command()
def disable() -> None:
    """Set O2CB_ENABLED=false, then stop."""
    init_verb("disable")



def main() -> None:
    cli(prog_name="o2cb")
