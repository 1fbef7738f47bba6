"""Failures a user or the machine can cause, each with its LSB exit code."""

from __future__ import annotations

from enum import IntEnum

SHOWN_MAX = 40  # characters of a value an error line repeats


def shown(value: str, limit: int = SHOWN_MAX) -> str:
    """VALUE as an error line may quote it: a long one cut, with its full length.

    Every message that repeats something a user wrote goes through this, so
    that one error stays one short line whatever was written; characters
    that are not printable are shown escaped.
    """
    size = len(value.encode("utf-8", errors="surrogateescape"))
    if not value.isprintable():  # a newline or escape sequence must not reach the terminal
        value = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
    if len(value) <= limit:
        return value
    return f"{value[:limit]}... ({size} bytes)"


class ExitCode(IntEnum):
    """LSB init-script exit codes (status uses 3 for "not running")."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    NOT_RUNNING = 3
    NOT_ROOT = 4
    NOT_INSTALLED = 5
    NOT_CONFIGURED = 6
    PROGRAM_NOT_RUNNING = 7  # an action other than status on a stopped service


class O2cbError(Exception):
    """Base class: carries a one-line message and the exit code it maps to."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(O2cbError):
    """The sysconfig file or cluster.conf is missing or invalid."""

    exit_code = ExitCode.NOT_CONFIGURED


class UnsupportedError(O2cbError):
    """The configured stack cannot run on this kernel."""

    exit_code = ExitCode.NOT_CONFIGURED


class MissingProgramError(O2cbError):
    """A program this verb needs (modprobe, mount, a daemon) is not installed."""

    exit_code = ExitCode.NOT_INSTALLED


class NotRootError(O2cbError):
    exit_code = ExitCode.NOT_ROOT


class InvalidValueError(O2cbError):
    """A value given on the command line is out of range or malformed."""

    exit_code = ExitCode.USAGE


class NotRunningError(O2cbError):
    """The verb needs the cluster running (reload), and it is not."""

    exit_code = ExitCode.PROGRAM_NOT_RUNNING


class UnimplementedError(O2cbError):
    """The verb has nothing to do on this stack (LSB: unimplemented feature, 3)."""

    exit_code = ExitCode.NOT_RUNNING


class StepFailed(O2cbError):
    """A step failed; its reason has already been reported."""


class StepError(O2cbError):
    """Raised inside a step to make it fail with this reason."""
