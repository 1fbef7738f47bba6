"""The cluster stacks, picked by O2CB_STACK.

Only the configured stack's module is imported: the classic stack never
pays for the control daemons (psutil) of the userspace ones.
"""

from __future__ import annotations

import importlib

from ..context import Context
from ..errors import ConfigError
from .base import Stack

# O2CB_STACK -> (module in this package, class of its parts)
STACKS: dict[str, tuple[str, str]] = {
    "o2cb": ("o2cb", "O2cbParts"),
    "heartbeat2": ("heartbeat2", "Heartbeat2Parts"),
    "cman": ("cman", "CmanParts"),
    "pcmk": ("pcmk", "PcmkParts"),
}


def stack_for(context: Context) -> Stack:
    name = context.settings.stack
    if name not in STACKS:
        raise ConfigError(
            f"{context.settings.path}: cluster stack \"{name}\" is not supported here"
        )
    module, cls = STACKS[name]
    parts = getattr(importlib.import_module(f"{__name__}.{module}"), cls)(context)
    return Stack(context, parts)
