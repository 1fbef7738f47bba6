"""Apply the simulated kernel's configfs rules inside a subprocess ``o2cb``.

Put this directory on PYTHONPATH and set O2CB_SIMKERNEL=1 (as
``SimKernel.environment()`` does): when the process imports
``o2cb_init.system``, its System class gets the wrappers from
``simkernel.configfs_rules``.  Nothing is imported before that, so other
Python programs started with the same environment pay nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from pathlib import Path
from typing import Any

_TARGET = "o2cb_init.system"


class _InstallRules(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of o2cb_init.system to patch it after import."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original_exec = loader.exec_module  # type: ignore[attr-defined]

        def exec_module(module: Any) -> None:
            original_exec(module)
            sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
            from simkernel.configfs_rules import install

            install(module.System)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if os.environ.get("O2CB_SIMKERNEL") == "1":
    sys.meta_path.insert(0, _InstallRules())
