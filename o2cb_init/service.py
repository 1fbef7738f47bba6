"""The init verbs as plans of stack operations.

start = load + online, stop = offline + unload, as the reference script
composes them.  Each verb that changes the machine is planned, then
carried out (plan.py says how).  Each function returns the LSB exit code;
failures raise an O2cbError that the command line turns into one line and
its exit code.

Every verb that changes the machine is planned and carried out under the
o2cb lock (lock.py), so two runs never interleave.  `load`, `online` and
`start` are all or nothing: when one fails, the changes it made are undone,
and the machine is as it was before the run.  `stop`, `offline` and
`force-offline` are never undone: they go as far as safety allows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from . import lock
from .context import Context
from .errors import ConfigError, ExitCode, O2cbError
from .stacks import Stack, stack_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    Verb = TypeVar("Verb", bound=Callable[..., int])
Operations = Callable[[], object]

STATUS_JSON_VERSION = 1  # doc/status.schema.json
ALL_OR_NOTHING = True
AS_FAR_AS_SAFE = False


def _cluster(context: Context, cluster: str | None) -> str:
    return cluster or context.settings.bootcluster


def _locked(verb: Verb) -> Verb:
    """Hold the o2cb lock for the whole verb: its planning and its changes."""

    @wraps(verb)
    def run(context: Context, *args: Any, **kwargs: Any) -> int:
        with lock.exclusive(context.system, verb.__name__.replace("_", "-")):
            return verb(context, *args, **kwargs)

    return run  # type: ignore[return-value]


def _carry_out(context: Context, *parts: tuple[bool, Operations]) -> int:
    """Plan the parts, then carry the plan out (a dry run shows it)."""
    planner = context.planner
    planner.carry_out(planner.plan(*parts))
    return ExitCode.OK


def _enabled(context: Context) -> bool:
    if not context.settings.enabled:
        context.system.probe(f"O2CB_ENABLED is not true in {context.settings.path}; not starting")
    return context.settings.enabled


def _online_operations(stack: Stack, name: str) -> None:
    stack.load()
    if name:
        stack.online(name)


def _stop_operations(stack: Stack, name: str) -> None:
    if name:
        stack.offline(name)
    stack.unload()


@_locked
def load(context: Context) -> int:
    return _carry_out(context, (ALL_OR_NOTHING, stack_for(context).load))


def online(context: Context, cluster: str | None) -> int:
    stack = stack_for(context)
    name = _cluster(context, cluster)
    if name:
        # Before the lock: a layout that cannot work changes nothing, not even /run.
        stack.check_online(name)
        from .check import preflight  # here: only start and online look before loading

        preflight(context, name, context.report.problem)
    with lock.exclusive(context.system, "online"):
        return _carry_out(context, (ALL_OR_NOTHING, lambda: _online_operations(stack, name)))


@_locked
def offline(context: Context, cluster: str | None, force: bool = False) -> int:
    name = _cluster(context, cluster)
    if not name:
        return ExitCode.OK
    stack = stack_for(context)
    return _carry_out(context, (AS_FAR_AS_SAFE, lambda: stack.offline(name, force=force)))


@_locked
def unload(context: Context, cluster: str | None) -> int:
    stack = stack_for(context)
    name = _cluster(context, cluster)
    return _carry_out(context, (AS_FAR_AS_SAFE, lambda: _stop_operations(stack, name)))


def start(context: Context, cluster: str | None) -> int:
    return online(context, cluster) if _enabled(context) else ExitCode.OK


@_locked
def stop(context: Context, cluster: str | None) -> int:
    return unload(context, cluster)


@_locked
def restart(context: Context, cluster: str | None) -> int:
    stack = stack_for(context)
    name = _cluster(context, cluster)

    def start_operations() -> None:
        if _enabled(context):
            if name:
                stack.check_online(name)
            _online_operations(stack, name)

    return _carry_out(
        context,
        (AS_FAR_AS_SAFE, lambda: _stop_operations(stack, name)),
        (ALL_OR_NOTHING, start_operations),
    )


def reload(context: Context, cluster: str | None) -> int:
    """Bring the running cluster to the files as far as the kernel allows online;
    refused whole when a difference needs a restart; exit 7 when it is stopped."""
    name = _cluster(context, cluster)
    if not name:
        raise ConfigError("reload: no cluster given and O2CB_BOOTCLUSTER is empty")
    stack = stack_for(context)
    reload = stack.reloader()
    stack.check_online(name)
    with lock.exclusive(context.system, "reload"):
        return _carry_out(context, (ALL_OR_NOTHING, lambda: reload(name)))


def status(context: Context, cluster: str | None, as_json: bool) -> int:
    """Report drivers and cluster; exit 0 when online, 3 when not, 1 when partial (LSB)."""
    stack = stack_for(context)
    name = _cluster(context, cluster)
    report = stack.status(name)
    report.facts["stack"] = stack.name
    running = report.facts.get("online", False) if name else _drivers_ready(report.facts)
    if as_json:
        import json

        report.facts["running"] = running
        report.facts["version"] = STATUS_JSON_VERSION
        context.report.line(json.dumps(report.facts, indent=2, sort_keys=True))
    else:
        for line in report.lines:
            context.report.line(line)
    if report.facts.get("partial"):
        return ExitCode.FAILURE  # neither running nor stopped: something is missing
    return ExitCode.OK if running else ExitCode.NOT_RUNNING


def _drivers_ready(facts: dict[str, object]) -> bool:
    return all(value for key, value in facts.items() if key.endswith(("_loaded", "_mounted")))


def online_status(context: Context, cluster: str | None) -> int:
    """Print online/offline and exit 0/1, as the reference does; 2 without a cluster.

    When the state cannot be read (configfs unreadable, say), it prints
    `error` and exits 2, as the reference does, with the reason on stderr.
    """
    name = _cluster(context, cluster)
    if not name:
        context.report.problem("online-status: no cluster given and O2CB_BOOTCLUSTER is empty")
        return 2
    try:
        online = stack_for(context).is_online(name)
    except (OSError, O2cbError) as error:
        context.report.line("error")
        context.report.problem(f"online-status: {_reason(error)}")
        return 2
    if online:
        context.report.line("online")
        return ExitCode.OK
    context.report.line("offline")
    return ExitCode.FAILURE


def _reason(error: OSError | O2cbError) -> str:
    if isinstance(error, O2cbError):
        return error.message
    where = f"{error.filename}: " if error.filename else ""
    return f"{where}{error.strerror or error}"
