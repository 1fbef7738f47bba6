"""Programs started without subprocess: output, exit codes, descriptors, detachment."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from o2cb_init import processes

SH = "/bin/sh"


def sh(script: str) -> tuple[int, str, str]:
    return processes.run(SH, ["sh", "-c", script], dict(os.environ))


def test_output_and_exit_code_are_read() -> None:
    assert sh("echo out; echo err >&2; exit 3") == (3, "out\n", "err\n")


def test_a_large_output_on_both_streams_does_not_block() -> None:
    code, out, err = sh("head -c 300000 /dev/zero | tr '\\0' o; head -c 300000 /dev/zero >&2")
    assert (code, len(out), len(err)) == (0, 300000, 300000)


def test_undecodable_output_is_replaced_not_raised() -> None:
    assert sh("printf 'a\\377b'") == (0, "a\ufffdb", "")


def test_a_signal_is_a_negative_exit_code_and_sigpipe_has_its_default_action() -> None:
    assert sh("kill -PIPE $$")[0] == -13


def test_no_descriptor_above_stderr_reaches_the_program(tmp_path: Path) -> None:
    inherited = os.open(tmp_path / "file", os.O_WRONLY | os.O_CREAT)
    os.set_inheritable(inherited, True)  # as one this process was given at its start
    processes._swept = False
    try:
        code, out, _ = sh("ls /proc/self/fd")
    finally:
        os.close(inherited)
    assert code == 0 and out.split() == ["0", "1", "2", "3"]  # 3: ls's listing


def test_a_program_that_cannot_run_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        processes.run(str(tmp_path / "missing"), ["missing"], {})
    data = tmp_path / "data"
    data.write_text("not a program\n")
    data.chmod(0o644)
    with pytest.raises(PermissionError):
        processes.launch(str(data), ["data"], {})


def test_a_daemon_is_launched_detached(tmp_path: Path) -> None:
    facts = ("cwd", "fds", "sid", "stdin")
    script = "; ".join(
        f"{command} > {tmp_path / name}"
        for name, command in zip(facts, (
            "pwd", "ls /proc/self/fd", "ps -o sid= -p $$", "readlink /proc/$$/fd/0"
        ), strict=True)
    )
    child = processes.launch(SH, ["sh", "-c", script + "; exit 4"], dict(os.environ))
    deadline = time.monotonic() + 10
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert child.poll() == 4
    cwd, fds, sid, stdin = ((tmp_path / name).read_text().split() for name in facts)
    # its directory is /, its session its own, its stdin /dev/null, nothing more
    # than stdin, stdout and stderr given (ls's 3 is its listing of the directory)
    assert (cwd, sid, stdin) == (["/"], [str(child.pid)], ["/dev/null"])
    assert fds == ["0", "1", "2", "3"] and os.getsid(0) != child.pid


def test_an_interrupted_run_takes_the_program_with_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            sh(f"echo $$ > {pid_file}; exec sleep 30")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped
