"""Reading the sysconfig file (/etc/sysconfig/o2cb or /etc/default/o2cb).

The file is shell-style ``KEY=value`` lines, but it is read as data, never
run.  configobj reads the values (quotes, inline comments); a strict line
scanner first checks that every line is a comment, a blank line or
``KEY=value`` (optionally quoted, without $ or backquotes, which a shell
would expand) and records where each key lives, so that every complaint
names its line and the writer can rewrite just that line.  The values are
validated by schema.settings_from.
"""

from __future__ import annotations

import os
import re

from configobj import ConfigObj, ConfigObjError

from ..errors import ConfigError, shown
from ..records import dataclass, field
from ..system import System
from .protected import read_protected
from .schema import OPTION_BY_KEY, Settings, settings_from

SYSCONFIG_PATH = "/etc/sysconfig/o2cb"
DEFAULT_PATH = "/etc/default/o2cb"
MISSING_HINT = "run 'o2cb configure' first"

_ASSIGNMENT = re.compile(r"(?P<lead>[ \t]*)(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<rest>.*)")
_VALUE = re.compile(r"\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'|(?P<bare>[^\s#\"'`]*)")
_TAIL = re.compile(r"(?:[ \t]+#.*)?[ \t]*")


@dataclass
class Entry:
    """Where one key lives: its line, its value and how it was spelled."""

    key: str
    index: int  # 0-based line index
    value: str  # unquoted
    lead: str
    quote: str
    tail: str  # whitespace and inline comment after the value

    @property
    def line(self) -> int:
        return self.index + 1

    def render(self, value: str) -> str:
        return f"{self.lead}{self.key}={self.quote}{value}{self.quote}{self.tail}"


@dataclass
class ConfigFile:
    """The sysconfig file as text lines, where each key is set, and its values."""

    path: str
    lines: list[str]
    entries: dict[str, Entry] = field(default_factory=dict)
    existed: bool = True

    @classmethod
    def parse(cls, text: str, path: str) -> ConfigFile:
        """Scan and parse TEXT; ConfigError with file:line on anything but KEY=value."""
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the final newline ends the last line
        document = cls(path, lines)
        for index, line in enumerate(lines):
            entry = _scan_line(line, index, path)
            if entry is None:
                continue
            first = document.entries.get(entry.key)
            if first is not None:
                raise ConfigError(
                    f"{path}:{entry.line}: duplicate key {shown(entry.key)}"
                    f" (already set on line {first.line})"
                )
            document.entries[entry.key] = entry
        document._read_values()
        return document

    def _read_values(self) -> None:
        """Take the values from configobj, which must see what the scanner saw."""
        try:
            values = ConfigObj(
                list(self.lines), list_values=False, interpolation=False, raise_errors=True
            )
        except ConfigObjError as error:
            line = getattr(error, "line_number", None)
            where = f"{self.path}:{line}" if line else self.path
            raise ConfigError(f"{where}: {shown(str(error), 80)}") from None
        for key, entry in self.entries.items():
            if key not in OPTION_BY_KEY:
                continue
            raw = values.get(key)
            if not isinstance(raw, str) or _unquote(raw) != entry.value:
                raise ConfigError(f"{self.path}:{entry.line}: cannot read the value of {key}")
            entry.value = _unquote(raw)

    def get(self, key: str) -> str | None:
        entry = self.entries.get(key)
        return None if entry is None else entry.value

    def settings(self, lenient: bool = False) -> tuple[Settings, list[str]]:
        """The validated settings; see schema.settings_from."""
        texts = {
            key: (entry.value, f"{self.path}:{entry.line}")
            for key, entry in self.entries.items()
        }
        return settings_from(texts, self.path, lenient)


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    return raw


def _scan_line(line: str, index: int, path: str) -> Entry | None:
    """One line: None for a comment or blank line, an Entry for KEY=value."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    where = f"{path}:{index + 1}"
    match = _ASSIGNMENT.fullmatch(line)
    if match is None:
        raise ConfigError(f"{where}: expected KEY=value, found '{shown(stripped)}'")
    key, rest = match["key"], match["rest"]
    value = _VALUE.match(rest)
    assert value is not None  # the bare alternative matches the empty string
    tail = rest[value.end():]
    if not _TAIL.fullmatch(tail) and key not in OPTION_BY_KEY:
        # an unknown key is kept as it is and never used: no need to understand it
        return Entry(key, index, rest, match["lead"], "", "")
    if not _TAIL.fullmatch(tail):
        if rest[:1] in "\"'" and value.group() == "":
            reason = "unterminated quote"
        else:
            reason = "a value must be one word, or quoted, without $ or backquotes"
        raise ConfigError(f"{where}: invalid value for {shown(key)}: {reason}")
    if value["dq"] is not None:
        text, quote = value["dq"], '"'
    elif value["sq"] is not None:
        text, quote = value["sq"], "'"
    else:
        text, quote = value["bare"], ""
    return Entry(key, index, text, match["lead"], quote, tail)


def locate(system: System) -> str:
    """Where the config lives, decided as the reference script decides it."""
    for candidate in (SYSCONFIG_PATH, DEFAULT_PATH):
        if os.path.isfile(system.path(candidate)):
            return candidate
    return SYSCONFIG_PATH if system.is_dir("/etc/sysconfig") else DEFAULT_PATH


def read(system: System, path: str | None = None) -> ConfigFile:
    """The file, checked line by line (not its values: see ConfigFile.settings)."""
    path = path or locate(system)
    return ConfigFile.parse(read_protected(system, path, MISSING_HINT), path)


def load(system: System, path: str | None = None) -> Settings:
    """The settings, strictly: any problem is a ConfigError naming file and line."""
    settings, _ = read(system, path).settings()
    return settings


def current(system: System, path: str | None = None) -> tuple[Settings, list[str]]:
    """The settings to start `configure` from: defaults when there is no file yet,
    defaults in place of invalid values (with the complaints)."""
    path = path or locate(system)
    if not os.path.exists(system.path(path)):
        return Settings(path=path), []
    return read(system, path).settings(lenient=True)
