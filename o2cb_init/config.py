"""The sysconfig file (/etc/sysconfig/o2cb or /etc/default/o2cb): locate, read, write.

The file is shell-style ``KEY=value`` lines, but it is read as data, never
run: configobj reads the values, and a strict line scanner checks that every
line is a comment, a blank line or ``KEY=value`` (optionally quoted) and
remembers where each key lives, so that every complaint names its line.

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
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from configobj import ConfigObj, ConfigObjError

from .errors import ConfigError, O2cbError, StepError, shown
from .report import Reporter
from .system import System

SYSCONFIG_PATH = "/etc/sysconfig/o2cb"
DEFAULT_PATH = "/etc/default/o2cb"

STACKS = ("o2cb", "heartbeat2", "cman", "pcmk")

CLUSTER_NAME_MAX = 16  # OCFS2_CLUSTER_NAME_LEN
VALUE_MAX = 2**31 - 1  # the kernel stores these as 32-bit integers
WRITE_TITLE = "Writing O2CB configuration"


@dataclass(frozen=True)
class Option:
    """One key of the file: its Settings field, default and limits."""

    key: str
    field: str
    default: str
    description: str
    name: str = ""  # how questions and errors call a numeric value
    minimum: int = 0


OPTIONS: tuple[Option, ...] = (
    Option("O2CB_ENABLED", "enabled", "false",
           "'true' starts the cluster stack at boot, 'false' leaves it down."),
    Option("O2CB_STACK", "stack", "o2cb",
           "The cluster stack backing O2CB: " + ", ".join(STACKS) + "."),
    Option("O2CB_BOOTCLUSTER", "bootcluster", "",
           "The cluster to bring online at boot; empty starts none."),
    Option("O2CB_HEARTBEAT_THRESHOLD", "heartbeat_threshold", "31",
           "Disk heartbeat iterations before a silent node counts as dead (at least 7).",
           "heartbeat dead threshold", 7),
    Option("O2CB_IDLE_TIMEOUT_MS", "idle_timeout_ms", "30000",
           "Milliseconds of silence before a network connection counts as dead"
           " (at least 5000).",
           "network idle timeout in ms", 5000),
    Option("O2CB_KEEPALIVE_DELAY_MS", "keepalive_delay_ms", "2000",
           "Longest wait in ms before a keepalive packet is sent (at least 1000,"
           " below the idle timeout).",
           "network keepalive delay in ms", 1000),
    Option("O2CB_RECONNECT_DELAY_MS", "reconnect_delay_ms", "2000",
           "Shortest wait in ms between two connection attempts (at least 2000).",
           "network reconnect delay in ms", 2000),
)
OPTION_BY_KEY = {option.key: option for option in OPTIONS}
KEYS = tuple(option.key for option in OPTIONS)


@dataclass(frozen=True)
class Settings:
    """The values of the config file, typed, with the kernel's defaults."""

    path: str
    enabled: bool = False
    stack: str = "o2cb"
    bootcluster: str = ""
    heartbeat_threshold: int = 31
    idle_timeout_ms: int = 30000
    keepalive_delay_ms: int = 2000
    reconnect_delay_ms: int = 2000

    def values(self) -> dict[str, str]:
        """The settings as the file spells them, key by key."""
        return {option.key: format_value(getattr(self, option.field)) for option in OPTIONS}


# -- values ---------------------------------------------------------------------


def format_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


CLUSTER_NAME_RULE = f"1 to {CLUSTER_NAME_MAX} letters, digits, '-' or '_'"


def valid_cluster_name(name: str) -> bool:
    """A name the kernel takes as an o2nm cluster and ocfs2 stores on disk.

    The on-disk field is OCFS2_CLUSTER_NAME_LEN (16) bytes; the name is a
    configfs directory, so '/', '.' and the like would make it a path.
    """
    return bool(re.fullmatch(rf"[A-Za-z0-9_-]{{1,{CLUSTER_NAME_MAX}}}", name, re.ASCII))


def bounded_int(text: str, low: int, high: int) -> int:
    """The decimal TEXT as a number in LOW..HIGH; ValueError (a short reason) if not.

    A text of any length is judged without converting more digits than
    HIGH has, so thousands of digits are simply out of range.
    """
    if not re.fullmatch(r"[0-9]+", text, re.ASCII):
        raise ValueError(f"'{shown(text)}' is not a number")
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(high)) or not low <= int(digits) <= high:
        raise ValueError(f"{shown(text)} is out of range ({low} to {high})")
    return int(digits)


def parse_enabled(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"Invalid O2CB_ENABLED value: {shown(text)} (must be true or false)")
    return text == "true"


def parse_stack(text: str) -> str:
    if text not in STACKS:
        raise ValueError(f"Invalid cluster stack: {shown(text)} (one of {', '.join(STACKS)})")
    return text


def parse_cluster(text: str) -> str:
    if text and not valid_cluster_name(text):
        raise ValueError(
            f"Invalid cluster name: {shown(text)} ({CLUSTER_NAME_RULE})"
        )
    return text


def parse_number(option: Option, text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text, re.ASCII):
        raise ValueError(f"Invalid {option.name} value: {shown(text)}")
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(VALUE_MAX)) or int(digits) > VALUE_MAX:
        raise ValueError(f"{option.name} cannot be more than {VALUE_MAX}")
    number = int(digits)
    if number < option.minimum:
        raise ValueError(f"{option.name} cannot be less than {option.minimum}")
    return number


def parse_value(key: str, text: str) -> bool | str | int:
    """The typed value of KEY; an empty text means the default.  ValueError: why not."""
    option = OPTION_BY_KEY[key]
    text = text or option.default
    if key == "O2CB_ENABLED":
        return parse_enabled(text)
    if key == "O2CB_STACK":
        return parse_stack(text)
    if key == "O2CB_BOOTCLUSTER":
        return parse_cluster(text)
    return parse_number(option, text)


def check_keepalive(keepalive_delay_ms: int, idle_timeout_ms: int) -> None:
    """The kernel refuses a keepalive delay that is not below the idle timeout."""
    if keepalive_delay_ms >= idle_timeout_ms:
        raise ValueError(
            f"network keepalive delay in ms ({keepalive_delay_ms}) must be less than"
            f" the network idle timeout in ms ({idle_timeout_ms})"
        )


# -- reading a protected file ---------------------------------------------------


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


# -- the file as lines ------------------------------------------------------------

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
    """The sysconfig file as text lines plus where each key is set."""

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
        document._check_with_configobj()
        return document

    def _check_with_configobj(self) -> None:
        """Read the values with configobj and make sure it sees what the scanner saw."""
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

    @classmethod
    def new(cls, path: str) -> ConfigFile:
        """A file not yet written: the sample's comments, every key at its default."""
        document = cls.parse(sample_text(), path)
        document.existed = False
        return document

    def get(self, key: str) -> str | None:
        entry = self.entries.get(key)
        return None if entry is None else entry.value

    def set(self, key: str, value: str) -> None:
        """Set KEY: rewrite its line, else uncomment its sample line, else append."""
        entry = self.entries.get(key)
        if entry is not None:
            self.lines[entry.index] = entry.render(value)
            entry.value = value
            return
        entry = Entry(key, len(self.lines), value, "", "", "")
        commented = re.compile(rf"[ \t]*#[ \t]*{key}=")
        for index, line in enumerate(self.lines):
            if commented.match(line):
                entry.index = index
                self.lines[index] = entry.render(value)
                break
        else:
            option = OPTION_BY_KEY.get(key)
            if self.lines and self.lines[-1].strip():
                self.lines.append("")
            if option is not None:
                self.lines.append(f"# {key}: {option.description}")
            entry.index = len(self.lines)
            self.lines.append(entry.render(value))
        self.entries[key] = entry

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)

    def settings(self, lenient: bool = False) -> tuple[Settings, list[str]]:
        """The typed settings; ConfigError (file:line) on an invalid value.

        ``lenient`` puts the default in place of an invalid value and
        returns the complaints instead, for `configure` to fix a bad file.
        """
        values: dict[str, object] = {}
        problems: list[str] = []
        for option in OPTIONS:
            entry = self.entries.get(option.key)
            text = entry.value if entry else ""
            try:
                values[option.field] = parse_value(option.key, text)
            except ValueError as error:
                where = f"{self.path}:{entry.line}" if entry else self.path
                message = f"{where}: {option.key}: {error}"
                if not lenient:
                    raise ConfigError(message) from None
                problems.append(message)
                values[option.field] = parse_value(option.key, "")
        settings = Settings(path=self.path, **values)  # type: ignore[arg-type]
        try:
            check_keepalive(settings.keepalive_delay_ms, settings.idle_timeout_ms)
        except ValueError as error:
            entry = self.entries.get("O2CB_KEEPALIVE_DELAY_MS") or self.entries.get(
                "O2CB_IDLE_TIMEOUT_MS"
            )
            line = f":{entry.line}" if entry else ""
            message = f"{self.path}{line}: {error}"
            if not lenient:
                raise ConfigError(message) from None
            problems.append(message)
            settings = replace(settings, keepalive_delay_ms=2000, idle_timeout_ms=30000)
        return settings, problems


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


# -- locating, loading, saving ---------------------------------------------------


def locate(system: System) -> str:
    """Where the config lives, decided as the reference script decides it."""
    for candidate in (SYSCONFIG_PATH, DEFAULT_PATH):
        if system.path(candidate).is_file():
            return candidate
    return SYSCONFIG_PATH if system.is_dir("/etc/sysconfig") else DEFAULT_PATH


MISSING_HINT = "run 'o2cb configure' first"


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
    if not system.path(path).exists():
        return Settings(path=path), []
    return read(system, path).settings(lenient=True)


def _same(key: str, old: str | None, new: str) -> bool:
    if key not in OPTION_BY_KEY:
        return old == new
    try:
        return parse_value(key, old or "") == parse_value(key, new)
    except ValueError:
        return False


def update(system: System, path: str, changes: Mapping[str, str]) -> bool:
    """Set keys in the file, writing it only when a value changes.  True if it did.

    An existing file keeps every other line as it was; a new one starts
    from the sample with the changed keys uncommented.  The write is atomic:
    when it cannot happen the old file stays as it was and O2cbError says why.
    """
    exists = system.path(path).exists()
    document = read(system, path) if exists else ConfigFile.new(path)
    changed = False
    for key, value in changes.items():
        if document.existed and _same(key, document.get(key), value):
            continue
        if not document.existed and document.get(key) == value:
            continue
        document.set(key, value)
        changed = True
    if not document.existed and not changed:
        # nothing differs from the sample, but the file must exist afterwards
        changed = True
    if not changed:
        return False
    write(system, path, document.text())
    return True


def write(system: System, path: str, text: str) -> None:
    """Atomically replace the file with TEXT (mode 0644); O2cbError when it cannot."""
    try:
        system.replace_file(path, text, mode=0o644)
    except OSError as error:
        reason = error.strerror or str(error)
        if isinstance(error, FileNotFoundError):
            reason = f"directory {Path(path).parent} does not exist"
        raise O2cbError(f"Unable to write the driver configuration {path}: {reason}") from None


def save(system: System, settings: Settings, path: str | None = None) -> bool:
    """Write every value of SETTINGS that differs from the file; True if it wrote."""
    path = path or settings.path or locate(system)
    return update(system, path, settings.values())


def save_reported(
    system: System,
    settings: Settings,
    path: str | None = None,
    reporter: Reporter | None = None,
) -> bool:
    """save() as the step `Writing O2CB configuration: OK` (or Failed + reason)."""
    reporter = reporter or Reporter(system)
    with reporter.step(WRITE_TITLE):
        try:
            return save(system, settings, path)
        except O2cbError as error:
            raise StepError(error.message) from None


def set_enabled(
    system: System,
    path: str | None,
    enabled: bool,
    reporter: Reporter | None = None,
) -> bool:
    """`enable` / `disable`: set O2CB_ENABLED; True when the file changed.

    As in the reference, `Writing O2CB configuration: OK` is printed only
    when the file really changes; a failed write prints Failed and its
    reason and raises StepFailed (exit 1), the old file left as it was.
    """
    path = path or locate(system)
    value = format_value(enabled)
    if system.path(path).exists():
        document = read(system, path)
        if _same("O2CB_ENABLED", document.get("O2CB_ENABLED"), value):
            return False
    reporter = reporter or Reporter(system)
    with reporter.step(WRITE_TITLE):
        try:
            return update(system, path, {"O2CB_ENABLED": value})
        except O2cbError as error:
            raise StepError(error.message) from None


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
