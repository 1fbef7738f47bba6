"""The init verbs as sequences of stack operations.

start = load + online, stop = offline + unload, as the reference script
composes them.  Each function returns the LSB exit code; failures raise an
O2cbError that the command line turns into one line and its exit code.
"""

from __future__ import annotations

import json

from .errors import ExitCode
from .stacks import stack_for
from .stacks.base import Context


def _cluster(context: Context, cluster: str | None) -> str:
    return cluster or context.settings.bootcluster


def load(context: Context) -> int:
    stack_for(context).load()
    return ExitCode.OK


def online(context: Context, cluster: str | None) -> int:
    stack = stack_for(context)
    name = _cluster(context, cluster)
    if name:
        stack.check_online(name)
    stack.load()
    if name:
        stack.online(name)
    return ExitCode.OK


def offline(context: Context, cluster: str | None, force: bool = False) -> int:
    name = _cluster(context, cluster)
    if name:
        stack_for(context).offline(name, force=force)
    return ExitCode.OK


def unload(context: Context, cluster: str | None) -> int:
    stack = stack_for(context)
    name = _cluster(context, cluster)
    if name:
        stack.offline(name)
    stack.unload()
    return ExitCode.OK


def start(context: Context, cluster: str | None) -> int:
    if not context.settings.enabled:
        context.system.probe(f"O2CB_ENABLED is not true in {context.settings.path}; not starting")
        return ExitCode.OK
    return online(context, cluster)


def stop(context: Context, cluster: str | None) -> int:
    return unload(context, cluster)


def restart(context: Context, cluster: str | None) -> int:
    stop(context, cluster)
    return start(context, cluster)


def status(context: Context, cluster: str | None, as_json: bool) -> int:
    """Report drivers and cluster; exit 0 when online, 3 when not (LSB)."""
    stack = stack_for(context)
    name = _cluster(context, cluster)
    report = stack.status(name)
    report.facts["stack"] = stack.name
    running = report.facts.get("online", False) if name else _drivers_ready(report.facts)
    if as_json:
        report.facts["running"] = running
        context.report.line(json.dumps(report.facts, indent=2, sort_keys=True))
    else:
        for line in report.lines:
            context.report.line(line)
    return ExitCode.OK if running else ExitCode.NOT_RUNNING


def _drivers_ready(facts: dict[str, object]) -> bool:
    return all(value for key, value in facts.items() if key.endswith(("_loaded", "_mounted")))


def online_status(context: Context, cluster: str | None) -> int:
    """Print online/offline and exit 0/1, as the reference does; 2 without a cluster."""
    name = _cluster(context, cluster)
    if not name:
        context.report.problem("online-status: no cluster given and O2CB_BOOTCLUSTER is empty")
        return 2
    if stack_for(context).is_online(name):
        context.report.line("online")
        return ExitCode.OK
    context.report.line("offline")
    return ExitCode.FAILURE

