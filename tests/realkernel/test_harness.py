"""The bed's own logic, without booting: skip or fail, console slicing, state diffs."""

from __future__ import annotations

import pytest

from . import guest, harness
from .test_realkernel import differences


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("", False), ("false", False), ("0", False), ("true", True), ("1", True)],
)
def test_in_ci(monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert harness.in_ci() is expected


def test_missing_prerequisites_skip_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "missing_prerequisites", lambda: ["vng not found"])
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="vng not found"):
        harness.require_bed()


def test_missing_prerequisites_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "missing_prerequisites", lambda: ["vng not found"])
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="vng not found"):
        harness.require_bed()


def test_missing_kernel_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2CB_RK_KERNEL", "0.0.0-none")
    assert any("/boot/vmlinuz-0.0.0-none" in reason for reason in harness.missing_prerequisites())


def test_console_section_is_the_named_scenario_only() -> None:
    console = "".join(
        f"{guest.BEGIN}{name}\n$ o2cb {name}\n{guest.END}{name}\n"
        for name in ("parity:stop", "parity:stop-clean")
    )
    section = harness.console_section(console, "parity:stop")
    assert section == f"{guest.BEGIN}parity:stop\n$ o2cb parity:stop\n{guest.END}parity:stop\n"


def test_differences_name_each_path() -> None:
    left = {"configfs": {"a": "1", "b": "2"}, "modules": ["x", "y"], "listeners": []}
    right = {"configfs": {"a": "1", "b": "3"}, "modules": ["x"], "listeners": []}
    text = differences(left, right, ("ref", "ours"))
    assert "configfs[b]: ref='2' ours='3'" in text
    assert "modules: only ref: ['y']; only ours: []" in text
    assert "listeners" not in text
    assert differences(left, left, ("ref", "ours")) == ""


def test_listeners_decode_proc_net_tcp(monkeypatch: pytest.MonkeyPatch) -> None:
    table = (
        "  sl  local_address rem_address   st\n"
        "   0: 0100007F:1E61 00000000:0000 0A\n"
        "   1: 0100007F:1E61 0200007F:9C40 01\n"
    )
    monkeypatch.setattr(guest, "read", lambda path: table)
    assert guest.listeners() == ["127.0.0.1:7777"]
