"""click's CliRunner with stdout and stderr kept apart, on every click we support.

click 8.1 mixes stderr into stdout unless asked not to (``mix_stderr=False``);
click 8.2 removed that argument and always keeps both apart.  Tests call
``invoke`` (or ``runner``) from here, never ``CliRunner()`` directly.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import click
from click.testing import CliRunner, Result

_MIXES_BY_DEFAULT = "mix_stderr" in inspect.signature(CliRunner.__init__).parameters


def runner() -> CliRunner:
    """A CliRunner whose results have separate ``stdout`` and ``stderr``."""
    if _MIXES_BY_DEFAULT:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg,unused-ignore]
    return CliRunner()


def invoke(
    command: click.Command, args: Sequence[str], input: str | None = None, **kwargs: Any
) -> Result:
    """Run COMMAND in-process; an exception other than an exit is re-raised as it is."""
    result = runner().invoke(command, list(args), input=input, **kwargs)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result
