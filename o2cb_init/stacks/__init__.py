"""The cluster stacks, picked by O2CB_STACK."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from .base import Context, Stack
from .cman import CmanStack
from .heartbeat2 import Heartbeat2Stack
from .o2cb import O2cbStack
from .pcmk import PcmkStack

STACKS: dict[str, Callable[[Context], Stack]] = {
    O2cbStack.name: O2cbStack,
    Heartbeat2Stack.name: Heartbeat2Stack,
    CmanStack.name: CmanStack,
    PcmkStack.name: PcmkStack,
}


def stack_for(context: Context) -> Stack:
    name = context.settings.stack
    if name not in STACKS:
        raise ConfigError(
            f"{context.settings.path}: cluster stack \"{name}\" is not supported here"
        )
    return STACKS[name](context)
