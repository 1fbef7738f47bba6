"""The facts `status` shows, as text lines and as typed data for --json."""

from __future__ import annotations

from .records import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


@dataclass
class StatusReport:
    lines: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, key: str, value: Any, line: str) -> None:
        self.facts[key] = value
        self.lines.append(line)


def loaded_word(flag: bool) -> str:
    return "Loaded" if flag else "Not loaded"
