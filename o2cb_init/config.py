"""The sysconfig file (/etc/sysconfig/o2cb or /etc/default/o2cb): locate, read."""

from __future__ import annotations

from dataclasses import dataclass

from configobj import ConfigObj, ConfigObjError

from .errors import ConfigError
from .system import System

SYSCONFIG_PATH = "/etc/sysconfig/o2cb"
DEFAULT_PATH = "/etc/default/o2cb"

STACKS = ("o2cb", "heartbeat2", "cman", "pcmk")


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


def locate(system: System) -> str:
    """Where the config lives, decided as the reference script decides it."""
    for candidate in (SYSCONFIG_PATH, DEFAULT_PATH):
        if system.exists(candidate):
            return candidate
    return SYSCONFIG_PATH if system.is_dir("/etc/sysconfig") else DEFAULT_PATH


def load(system: System, path: str | None = None) -> Settings:
    path = path or locate(system)
    real = system.path(path)
    if not real.exists():
        raise ConfigError(f"{path}: not found; run 'o2cb configure' first")
    try:
        values = ConfigObj(str(real), list_values=False, interpolation=False)
    except ConfigObjError as error:
        raise ConfigError(f"{path}: {error}") from None
    return Settings(
        path=path,
        enabled=values.get("O2CB_ENABLED", "false").strip('"') == "true",
        stack=values.get("O2CB_STACK", "") or "o2cb",
        bootcluster=values.get("O2CB_BOOTCLUSTER", ""),
        heartbeat_threshold=int(values.get("O2CB_HEARTBEAT_THRESHOLD") or 31),
        idle_timeout_ms=int(values.get("O2CB_IDLE_TIMEOUT_MS") or 30000),
        keepalive_delay_ms=int(values.get("O2CB_KEEPALIVE_DELAY_MS") or 2000),
        reconnect_delay_ms=int(values.get("O2CB_RECONNECT_DELAY_MS") or 2000),
    )
