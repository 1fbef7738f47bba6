"""Writing the sysconfig file: line-preserving edits, put in place atomically.

Writes edit the original text line by line: only the lines of changed keys
are rewritten, so comments, blank lines, key order, unknown keys and the
exact spelling of untouched lines survive.  (configobj's own writer would
turn ``KEY=value`` into ``KEY = value``, which breaks the shell scripts that
still source this file, such as Debian's debconf script.)  The new text is
put in place atomically by System.replace_file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from ..errors import O2cbError, StepError
from ..system import System
from .schema import OPTION_BY_KEY, OPTIONS, Settings, format_value, parse_value
from .sysconfig import ConfigFile, Entry, locate, read

WRITE_TITLE = "Writing O2CB configuration"


def new_document(path: str) -> ConfigFile:
    """A file not yet written: the sample's comments, every key at its default."""
    document = ConfigFile.parse(sample_text(), path)
    document.existed = False
    return document


def set_value(document: ConfigFile, key: str, value: str) -> None:
    """Set KEY: rewrite its line, else uncomment its sample line, else append."""
    entry = document.entries.get(key)
    if entry is not None:
        document.lines[entry.index] = entry.render(value)
        entry.value = value
        return
    entry = Entry(key, len(document.lines), value, "", "", "")
    commented = re.compile(rf"[ \t]*#[ \t]*{key}=")
    for index, line in enumerate(document.lines):
        if commented.match(line):
            entry.index = index
            document.lines[index] = entry.render(value)
            break
    else:
        option = OPTION_BY_KEY.get(key)
        if document.lines and document.lines[-1].strip():
            document.lines.append("")
        if option is not None:
            document.lines.append(f"# {key}: {option.description}")
        entry.index = len(document.lines)
        document.lines.append(entry.render(value))
    document.entries[key] = entry



def text_of(document: ConfigFile) -> str:
    return "".join(line + "\n" for line in document.lines)


def _same(key: str, old: str | None, new: str) -> bool:
    if key not in OPTION_BY_KEY:
        return old == new
    try:
        return parse_value(key, old or "") == parse_value(key, new)
    except ValueError:
        return False


def _quiet_default(key: str, value: str) -> bool:
    """A key configure does not ask about, at its default: a new file leaves it commented."""
    option = OPTION_BY_KEY.get(key)
    return option is not None and not option.asked and _same(key, option.default, value)


def update(system: System, path: str, changes: Mapping[str, str]) -> bool:
    """Set keys in the file, writing it only when a value changes.  True if it did.

    An existing file keeps every other line as it was; a new one starts
    from the sample with the changed keys uncommented.  The write is atomic:
    when it cannot happen the old file stays as it was and O2cbError says why.
    """
    exists = os.path.exists(system.path(path))
    document = read(system, path) if exists else new_document(path)
    changed = False
    for key, value in changes.items():
        if document.existed and _same(key, document.get(key), value):
            continue
        if not document.existed and (document.get(key) == value or _quiet_default(key, value)):
            continue
        set_value(document, key, value)
        changed = True
    if not document.existed and not changed:
        # nothing differs from the sample, but the file must exist afterwards
        changed = True
    if not changed:
        return False
    write(system, path, text_of(document))
    return True


def write(system: System, path: str, text: str) -> None:
    """Atomically replace the file with TEXT (mode 0644); O2cbError when it cannot."""
    try:
        system.replace_file(path, text, mode=0o644)
    except OSError as error:
        reason = error.strerror or str(error)
        if isinstance(error, FileNotFoundError):
            reason = f"directory {os.path.dirname(path)} does not exist"
        raise O2cbError(f"Unable to write the driver configuration {path}: {reason}") from None


def save(system: System, settings: Settings, path: str | None = None) -> bool:
    """Write every value of SETTINGS that differs from the file; True if it wrote."""
    path = path or settings.path or locate(system)
    return update(system, path, settings.values())


def save_reported(
    system: System,
    settings: Settings,
    path: str | None = None,
) -> bool:
    """save() as the step `Writing O2CB configuration: OK` (or Failed + reason)."""
    return _write_reported(system, lambda: save(system, settings, path))


def set_enabled(
    system: System,
    path: str | None,
    enabled: bool,
) -> bool:
    """`enable` / `disable`: set O2CB_ENABLED; True when the file changed.

    As in the reference, `Writing O2CB configuration: OK` is printed only
    when the file really changes; a failed write prints Failed and its
    reason and raises StepFailed (exit 1), the old file left as it was.
    """
    path = path or locate(system)
    value = format_value(enabled)
    if os.path.exists(system.path(path)):
        document = read(system, path)
        if _same("O2CB_ENABLED", document.get("O2CB_ENABLED"), value):
            return False
    return _write_reported(system, lambda: update(system, path, {"O2CB_ENABLED": value}))


def _write_reported(system: System, write: Callable[[], bool]) -> bool:
    """``write`` as the step `Writing O2CB configuration`; whether it wrote."""
    from ..plan import Planner
    from ..report import Reporter

    wrote = False

    def write_step() -> None:
        nonlocal wrote
        try:
            wrote = write()
        except O2cbError as error:
            raise StepError(error.message) from None

    Planner(system, Reporter()).add(WRITE_TITLE, write_step)
    return wrote


# -- the sample --------------------------------------------------------------------

SAMPLE_HEADER = """\
#
# O2CB cluster stack settings, read by 'o2cb start' at boot and written by
# 'o2cb configure', 'o2cb enable' and 'o2cb disable'.
#
# Each setting is one KEY=value line (the value may be in double quotes).
# The file is read as data, never run as shell code.  A commented-out
# line shows a key with its default value.
#
"""


def sample_text() -> str:
    """The sample file: every key, commented out, with its default.

    etc/sysconfig/o2cb.sample and o2cb_init/o2cb.sample are this text
    (tests/test_config.py checks they are identical).
    """
    parts = [SAMPLE_HEADER]
    for option in OPTIONS:
        parts.append(f"\n# {option.key}: {option.description}\n#{option.key}={option.default}\n")
    return "".join(parts)
