"""Starting programs: a command whose output is read, and a detached daemon.

This is what System.run and daemons.py need of the subprocess module, whose
import (with selectors, threading, signal and locale) costs every start more
than the few programs it runs.  Commands are started with posix_spawn, which
reports a program that cannot be executed as OSError, as subprocess does.
A daemon is forked, since posix_spawn cannot change its directory to /.
Both close every descriptor above stderr in the program, as subprocess does
by default: the descriptors of this process are not inherited (PEP 446),
and those it inherited itself are marked so before the first program runs.
And both give the program the default action of the signals Python ignores
(SIGPIPE, SIGXFSZ), as subprocess does.
"""

from __future__ import annotations

import contextlib
import os
import signal

DEVNULL = "/dev/null"
FD_DIR = "/proc/self/fd"
IGNORED_BY_PYTHON = (signal.SIGPIPE, signal.SIGXFSZ)
_swept = False


def _sweep_inherited() -> None:
    """Mark every descriptor above stderr close-on-exec, once per process."""
    global _swept
    if _swept:
        return
    try:
        names = os.listdir(FD_DIR)
    except OSError:
        names = []
    for name in names:
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):  # the listing's own, closed by now
                os.set_inheritable(fd, False)
    _swept = True


def run(path: str, argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``path`` with ``argv`` and wait for it: its exit code (-N for signal N),
    stdout and stderr, decoded as UTF-8 with undecodable bytes replaced."""
    import select

    _sweep_inherited()
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        pid = os.posix_spawn(path, argv, env, setsigdef=IGNORED_BY_PYTHON, file_actions=[
            (os.POSIX_SPAWN_DUP2, out_write, 1),
            (os.POSIX_SPAWN_DUP2, err_write, 2),
        ])
    except OSError:
        for fd in (out_read, out_write, err_read, err_write):
            os.close(fd)
        raise
    os.close(out_write)
    os.close(err_write)
    chunks: dict[int, list[bytes]] = {out_read: [], err_read: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    open_fds = len(chunks)
    try:
        while open_fds:
            for fd, _event in poller.poll():
                data = os.read(fd, 65536)
                if data:
                    chunks[fd].append(data)
                else:
                    poller.unregister(fd)
                    open_fds -= 1
    except BaseException:  # interrupted: the program goes too, as with subprocess.run
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    finally:
        os.close(out_read)
        os.close(err_read)
    out, err = (b"".join(chunks[fd]).decode("utf-8", "replace") for fd in (out_read, err_read))
    return Child(pid).wait(), out, err


class Child:
    """A started program that nothing waits for until asked."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """Its exit code once it has returned (-N for signal N), else None."""
        return self._reap(os.WNOHANG)

    def wait(self) -> int:
        """Its exit code, once it has returned."""
        code = self._reap(0)
        assert code is not None  # a blocking waitpid returns only for an exit
        return code

    def _reap(self, options: int) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, options)
            except ChildProcessError:  # reaped already: SIGCHLD ignored, as subprocess sees it
                pid, status = self.pid, 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def launch(path: str, argv: list[str], env: dict[str, str]) -> Child:
    """Start ``path`` detached: its own session, / as its directory, and /dev/null
    for stdin, stdout and stderr.  OSError when it cannot be executed."""
    _sweep_inherited()
    report_read, report_write = os.pipe()  # closed on exec: EOF means it ran
    pid = os.fork()
    if pid == 0:  # the child: exec, or report why not and leave
        try:
            os.close(report_read)
            os.setsid()
            os.chdir("/")
            for number in IGNORED_BY_PYTHON:
                signal.signal(number, signal.SIG_DFL)
            null = os.open(DEVNULL, os.O_RDWR)
            for fd in (0, 1, 2):
                if fd != null:
                    os.dup2(null, fd)
                os.set_inheritable(fd, True)
            os.execve(path, argv, env)
        except OSError as error:
            os.write(report_write, str(error.errno or 0).encode())
        finally:
            os._exit(127)
    os.close(report_write)
    try:
        report = b""
        while chunk := os.read(report_read, 64):
            report += chunk
    finally:
        os.close(report_read)
    if report:
        Child(pid).wait()
        code = int(report)
        raise OSError(code, os.strerror(code), path)
    return Child(pid)
