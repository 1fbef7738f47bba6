"""Test doubles of the userspace stacks' programs, and how to install them.

The daemons are Python scripts; installed copies get this interpreter in
their #! line, so the process runs as ``python3 /ROOT/sbin/NAME.STACK`` and
o2cb finds it by that script's path.  Every test installs its own copies:
a daemon path is never shared between tests, so no test can mistake
another test's daemon for its own.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DAEMONS = ("o2cb_controld", "ocfs2_controld")


def install_program(source: str, target: Path) -> Path:
    """Copy the double ``source`` to ``target``, runnable by this interpreter."""
    target.parent.mkdir(parents=True, exist_ok=True)
    text = (HERE / source).read_text()
    first, rest = text.split("\n", 1)
    assert first.startswith("#!")
    target.write_text(f"#!{sys.executable}\n{rest}")
    target.chmod(0o755)
    common = target.parent / "_common.py"
    if not common.exists():
        shutil.copy(HERE / "_common.py", common)
    return target


def install_daemons(
    directory: Path, stack: str, names: tuple[str, ...] = DAEMONS
) -> dict[str, Path]:
    """Install the daemon doubles as NAME.STACK in ``directory`` (e.g. ROOT/sbin)."""
    return {name: install_program(name, directory / f"{name}.{stack}") for name in names}


def install_cman_tool(directory: Path) -> Path:
    return install_program("cman_tool", directory / "cman_tool")


def mode_variable(daemon: str) -> str:
    """The environment variable that sets a daemon double's behaviour."""
    return f"O2CB_DOUBLE_MODE_{daemon.upper()}"


__all__ = ["DAEMONS", "install_cman_tool", "install_daemons", "mode_variable"]
