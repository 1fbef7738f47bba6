"""Reading a file that decides what runs as root: trusted, regular, text."""

from __future__ import annotations

import os
import re
import stat

from ..errors import ConfigError
from ..system import System


def strict_modes(system: System) -> bool:
    """Ownership and mode are only checked on the real machine, not under --root."""
    return os.path.realpath(system.root) == "/"


def check_protection(path: str, status: os.stat_result, strict: bool = True) -> None:
    """Refuse a file that someone other than root could have written (sshd StrictModes).

    The config decides what runs as root at boot, so a file writable by group
    or others, or owned by another user, is not trusted.
    """
    if not stat.S_ISREG(status.st_mode):
        raise ConfigError(f"{path}: not a regular file")
    if not strict:
        return
    problems = []
    if status.st_uid != 0:
        problems.append(f"owned by uid {status.st_uid}, not root")
    if status.st_mode & 0o022:
        problems.append(
            f"writable by group or others (mode {stat.S_IMODE(status.st_mode):04o})"
        )
    if problems:
        raise ConfigError(
            f"{path}: refusing to use it: {' and '.join(problems)};"
            f" fix with 'chown root: {path}; chmod go-w {path}'"
        )


def read_protected(system: System, path: str, missing: str) -> str:
    """The text of a trusted config file.

    ConfigError when it is missing (``missing`` says what to do), not a
    regular file, writable by others (on the real machine), unreadable, or
    not text: NUL bytes, invalid UTF-8 or control characters.
    """
    real = system.path(path)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; {missing}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot open: {error.strerror}") from None
    try:
        check_protection(path, os.fstat(fd), strict_modes(system))
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    finally:
        os.close(fd)
    return decode_text(b"".join(chunks), path)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def decode_text(data: bytes, path: str) -> str:
    """UTF-8 text without control characters (tabs and newlines aside)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: binary content (not UTF-8 text)") from None
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise ConfigError(
            f"{path}:{line}: binary content (control character {bad.group()!r})"
        )
    return text
