"""Every key of the sysconfig file, defined once.

An Option carries everything about one key: the Settings field it fills,
its default as the file spells it, its limits, how it is parsed, the text
that explains it (the sample file's comment and `configure --help`), the
question `configure` asks and the command-line option that answers it in
advance.  The reader, `configure` and its click options all derive from
OPTIONS; nothing else states a default or a limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from ..errors import ConfigError, shown
from ..records import dataclass, replace

STACKS = ("o2cb", "heartbeat2", "cman", "pcmk")

CLUSTER_NAME_MAX = 16  # OCFS2_CLUSTER_NAME_LEN
CLUSTER_NAME_RULE = f"1 to {CLUSTER_NAME_MAX} letters, digits, '-' or '_'"
VALUE_MAX = 2**31 - 1  # the kernel stores these as 32-bit integers


# -- values -----------------------------------------------------------------------


def valid_cluster_name(name: str) -> bool:
    """A name the kernel takes as an o2nm cluster and ocfs2 stores on disk.

    The on-disk field is OCFS2_CLUSTER_NAME_LEN (16) bytes; the name is a
    configfs directory, so '/', '.' and the like would make it a path.
    """
    return bool(re.fullmatch(rf"[A-Za-z0-9_-]{{1,{CLUSTER_NAME_MAX}}}", name, re.ASCII))


def is_decimal(text: str) -> bool:
    """One or more ASCII digits, as [0-9]+ takes them, without a regex per call."""
    return text.isascii() and text.isdigit()


def bounded_int(text: str, low: int, high: int) -> int:
    """The decimal TEXT as a number in LOW..HIGH; ValueError (a short reason) if not.

    A text of any length is judged without converting more digits than
    HIGH has, so thousands of digits are simply out of range.
    """
    if not is_decimal(text):
        raise ValueError(f"'{shown(text)}' is not a number")
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(high)) or not low <= int(digits) <= high:
        raise ValueError(f"{shown(text)} is out of range ({low} to {high})")
    return int(digits)


def format_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
        raise ValueError(f"Invalid cluster name: {shown(text)} ({CLUSTER_NAME_RULE})")
    return text


def answer_enabled(text: str) -> bool:
    answer = text.lower()
    if answer in ("y", "yes"):
        return True
    if answer in ("n", "no"):
        return False
    raise ValueError(f"Invalid answer: {shown(text)}")


def answer_cluster(text: str) -> str:
    return "" if text == "none" else parse_cluster(text)


def check_keepalive(keepalive_delay_ms: int, idle_timeout_ms: int) -> None:
    """The kernel refuses a keepalive delay that is not below the idle timeout."""
    if keepalive_delay_ms >= idle_timeout_ms:
        raise ValueError(
            f"network keepalive delay in ms ({keepalive_delay_ms}) must be less than"
            f" the network idle timeout in ms ({idle_timeout_ms})"
        )


# -- the options --------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One key of the file and everything that is said or checked about it."""

    key: str
    field: str
    default: str  # as the file spells it
    text: str  # what it is; description adds the limits
    flag: str  # configure's option that answers the question in advance
    question: str = ""  # configure's question, before "[current]: "; numbers: derived
    name: str = ""  # numbers: how questions and errors call the value
    minimum: int = 0
    maximum: int = VALUE_MAX
    parser: Callable[[str], object] | None = None  # None: a number in minimum..maximum
    answer_parser: Callable[[str], object] | None = None  # None: as parser
    metavar: str = ""
    note: str = ""  # a limit that involves another key
    asked: bool = True  # False: configure's option sets it, its dialogue does not ask

    @property
    def description(self) -> str:
        """The sample file's comment and the option's --help."""
        if self.parser is not None:
            return self.text
        return f"{self.text} (at least {self.minimum}{self.note})."

    def parse(self, text: str) -> object:
        """The typed value of TEXT (the default when empty); ValueError says why not."""
        text = text or self.default
        if self.parser is not None:
            return self.parser(text)
        return self.parse_number(text)

    def parse_number(self, text: str) -> int:
        if not is_decimal(text):
            raise ValueError(f"Invalid {self.name} value: {shown(text)}")
        digits = text.lstrip("0") or "0"
        if len(digits) > len(str(self.maximum)) or int(digits) > self.maximum:
            raise ValueError(f"{self.name} cannot be more than {self.maximum}")
        number = int(digits)
        if number < self.minimum:
            raise ValueError(f"{self.name} cannot be less than {self.minimum}")
        return number

    def parse_answer(self, text: str) -> object:
        """A typed answer to configure's question or option (empty is no default here)."""
        parser = self.answer_parser or self.parser or self.parse_number
        return parser(text)

    def prompt(self, current: object) -> str:
        question = self.question or f"Specify {self.name} (>={self.minimum})"
        if isinstance(current, bool):
            current = "y" if current else "n"
        return f"{question} [{current}]: "


OPTIONS: tuple[Option, ...] = (
    Option("O2CB_ENABLED", "enabled", "false",
           "'true' starts the cluster stack at boot, 'false' leaves it down.",
           flag="--enable/--disable", question="Load O2CB driver on boot (y/n)",
           parser=parse_enabled, answer_parser=answer_enabled),
    Option("O2CB_STACK", "stack", "o2cb",
           "The cluster stack backing O2CB: " + ", ".join(STACKS) + ".",
           flag="--stack", question="Cluster stack backing O2CB",
           parser=parse_stack, metavar="NAME"),
    Option("O2CB_BOOTCLUSTER", "bootcluster", "",
           "The cluster to bring online at boot; empty starts none.",
           flag="--cluster", question='Cluster to start on boot (Enter "none" to clear)',
           parser=parse_cluster, answer_parser=answer_cluster, metavar="NAME"),
    Option("O2CB_HEARTBEAT_THRESHOLD", "heartbeat_threshold", "31",
           "Disk heartbeat iterations before a silent node counts as dead",
           flag="--heartbeat-threshold", name="heartbeat dead threshold", minimum=7,
           metavar="N"),
    Option("O2CB_IDLE_TIMEOUT_MS", "idle_timeout_ms", "30000",
           "Milliseconds of silence before a network connection counts as dead",
           flag="--idle-timeout-ms", name="network idle timeout in ms", minimum=5000,
           metavar="MS"),
    Option("O2CB_KEEPALIVE_DELAY_MS", "keepalive_delay_ms", "2000",
           "Longest wait in ms before a keepalive packet is sent",
           flag="--keepalive-delay-ms", name="network keepalive delay in ms", minimum=1000,
           metavar="MS", note=", below the idle timeout"),
    Option("O2CB_RECONNECT_DELAY_MS", "reconnect_delay_ms", "2000",
           "Shortest wait in ms between two connection attempts",
           flag="--reconnect-delay-ms", name="network reconnect delay in ms", minimum=2000,
           metavar="MS"),
    # Not one of the reference's questions: configure's dialogue stays theirs.
    # At most 240: o2cb.service gives the whole start 300 seconds (TimeoutSec).
    Option("O2CB_HEARTBEAT_DEVICE_TIMEOUT", "heartbeat_device_timeout", "30",
           "Seconds start waits, in all, for the devices of global heartbeat regions to"
           " appear (an iSCSI login, a multipath map) before it fails",
           flag="--heartbeat-device-timeout", name="heartbeat device timeout in seconds",
           minimum=0, maximum=240, metavar="SECONDS", note=", at most 240; 0 looks once",
           asked=False),
    # pcmk: corosync says it is up before its quorum forms (two_node waits for all).
    Option("O2CB_QUORUM_TIMEOUT", "quorum_timeout", "60",
           "Seconds start waits for corosync's quorum (cluster stack pcmk) before it fails",
           flag="--quorum-timeout", name="quorum timeout in seconds",
           minimum=0, maximum=240, metavar="SECONDS", note=", at most 240; 0 looks once",
           asked=False),
)
OPTION_BY_KEY = {option.key: option for option in OPTIONS}
OPTION_BY_FIELD = {option.field: option for option in OPTIONS}
KEYS = tuple(option.key for option in OPTIONS)


def parse_value(key: str, text: str) -> bool | str | int:
    """The typed value of KEY; an empty text means the default.  ValueError: why not."""
    return OPTION_BY_KEY[key].parse(text)  # type: ignore[return-value]


def parse_number(option: Option, text: str) -> int:
    return option.parse_number(text)


def _default(field: str) -> object:
    return OPTION_BY_FIELD[field].parse("")


@dataclass(frozen=True)
class Settings:
    """The values of the config file, typed; each default is its Option's."""

    path: str
    enabled: bool = _default("enabled")  # type: ignore[assignment]
    stack: str = _default("stack")  # type: ignore[assignment]
    bootcluster: str = _default("bootcluster")  # type: ignore[assignment]
    heartbeat_threshold: int = _default("heartbeat_threshold")  # type: ignore[assignment]
    idle_timeout_ms: int = _default("idle_timeout_ms")  # type: ignore[assignment]
    keepalive_delay_ms: int = _default("keepalive_delay_ms")  # type: ignore[assignment]
    reconnect_delay_ms: int = _default("reconnect_delay_ms")  # type: ignore[assignment]
    heartbeat_device_timeout: int = _default("heartbeat_device_timeout")  # type: ignore[assignment]
    quorum_timeout: int = _default("quorum_timeout")  # type: ignore[assignment]

    def values(self) -> dict[str, str]:
        """The settings as the file spells them, key by key."""
        return {option.key: format_value(getattr(self, option.field)) for option in OPTIONS}


def settings_from(
    texts: Mapping[str, tuple[str, str]], path: str, lenient: bool = False
) -> tuple[Settings, list[str]]:
    """Validate the file's values: KEY -> (text, where) with where as "file:line".

    A problem is a ConfigError naming where; ``lenient`` puts the default in
    place of an invalid value and returns the complaints instead, for
    `configure` to fix a bad file.
    """
    values: dict[str, object] = {}
    problems: list[str] = []

    def complain(message: str) -> None:
        if not lenient:
            raise ConfigError(message)
        problems.append(message)

    for option in OPTIONS:
        text, where = texts.get(option.key, ("", path))
        try:
            values[option.field] = option.parse(text)
        except ValueError as error:
            complain(f"{where}: {option.key}: {error}")
            values[option.field] = option.parse("")
    settings = Settings(path=path, **values)  # type: ignore[arg-type]
    try:
        check_keepalive(settings.keepalive_delay_ms, settings.idle_timeout_ms)
    except ValueError as error:
        where = (texts.get("O2CB_KEEPALIVE_DELAY_MS") or texts.get("O2CB_IDLE_TIMEOUT_MS")
                 or ("", path))[1]
        complain(f"{where}: {error}")
        defaults = Settings(path)
        settings = replace(
            settings,
            keepalive_delay_ms=defaults.keepalive_delay_ms,
            idle_timeout_ms=defaults.idle_timeout_ms,
        )
    return settings, problems
