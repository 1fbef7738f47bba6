"""What the daemon doubles share: their mode, their log, signals, the root."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

NAME = os.path.basename(sys.argv[0]).split(".", 1)[0]
ROOT = os.environ.get("O2CB_ROOT", "/")
MODE = os.environ.get(f"O2CB_DOUBLE_MODE_{NAME.upper()}", "ok")
LOG = os.environ.get("O2CB_DOUBLE_LOG")
IN_SIMULATION = os.path.realpath(ROOT) != "/"


def path(absolute: str) -> str:
    return os.path.join(ROOT, absolute.lstrip("/"))


def log(event: str) -> None:
    """One line per event, for tests that check the order daemons start and stop in."""
    if LOG:
        with open(LOG, "a") as handle:
            handle.write(f"{time.monotonic():.6f} {NAME} {os.getpid()} {event}\n")


def fail(message: str) -> None:
    print(f"{NAME}: {message}", file=sys.stderr)
    log(f"failed {message}")
    sys.exit(1)


def start() -> None:
    """Act out the start-up behaviour the mode asks for, before the daemon's own set-up."""
    if MODE == "fail":
        fail("failing at start, as asked")
    if MODE in ("fork", "vanish"):
        if os.fork() > 0:
            os._exit(0)  # the parent returns at once, like daemon(3)
        os.setsid()
        if MODE == "vanish":
            os._exit(0)
    if MODE == "slow":
        time.sleep(float(os.environ.get("O2CB_DOUBLE_DELAY", "2")))
    log("start")


def run(cleanup: Callable[[], None]) -> None:
    """Stay in the foreground until SIGTERM (or, in mode `die`, for a moment)."""

    def on_term(signum: int, frame: object) -> None:
        log("stop")
        cleanup()
        sys.exit(0)

    if MODE == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, on_term)
    log("ready")
    if MODE == "die":
        time.sleep(float(os.environ.get("O2CB_DOUBLE_DIE_AFTER", "1")))
        log("died")
        sys.exit(1)
    while True:
        signal.pause()
