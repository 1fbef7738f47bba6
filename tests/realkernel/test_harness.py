"""The bed's own logic, without booting: skip or fail, console slicing, state diffs."""

from __future__ import annotations

from pathlib import Path

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
    monkeypatch.setattr(harness, "missing_prerequisites", lambda kernel=None: ["vng not found"])
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="vng not found"):
        harness.require_bed()


def test_missing_prerequisites_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "missing_prerequisites", lambda kernel=None: ["vng not found"])
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="vng not found"):
        harness.require_bed()


def test_missing_kernel_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2CB_RK_KERNEL", "0.0.0-none")
    assert any("/boot/vmlinuz-0.0.0-none" in reason for reason in harness.missing_prerequisites())


@pytest.fixture
def suites(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A cache directory whose suite list names two installed kernels."""
    monkeypatch.setenv("O2CB_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("O2CB_RK_KERNEL", raising=False)
    monkeypatch.delenv("O2CB_RK_KERNELS", raising=False)
    (tmp_path / "kernels").mkdir()
    listing = tmp_path / "kernels" / "suites"
    listing.write_text("bullseye 5.10.0-32-amd64\ntrixie 6.12.117+deb13-amd64\n")
    return listing


def test_kernels_default_to_the_three_suites(
    suites: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness, "host_kernel_version", lambda: "6.1.0-56-amd64")
    assert [(k.suite, k.version) for k in harness.kernels()] == [
        ("bullseye", "5.10.0-32-amd64"),
        ("bookworm", "6.1.0-56-amd64"),
        ("trixie", "6.12.117+deb13-amd64"),
    ]


def test_kernels_from_the_environment_by_suite_or_version(
    suites: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("O2CB_RK_KERNELS", "trixie, 5.10.0-32-amd64 trixie")
    chosen = harness.kernels()
    assert [str(k) for k in chosen] == ["6.12.117+deb13-amd64", "5.10.0-32-amd64"]
    assert chosen[1].suite == "bullseye"
    assert chosen[0].label == "6.12.117+deb13-amd64 (trixie)"


def test_a_suite_never_installed_is_missing_with_the_reason(
    suites: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suites.write_text("bookworm 6.1.0-56-amd64\n")
    monkeypatch.setenv("O2CB_RK_KERNELS", "bullseye")
    (bullseye,) = harness.kernels()
    assert bullseye.version is None and str(bullseye) == "bullseye"
    (reason,) = harness.missing_kernel(bullseye)
    assert "no bullseye kernel installed" in reason and str(suites) in reason


def test_a_missing_kernel_skips_outside_ci_and_fails_in_ci(
    suites: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = harness.Kernel("0.0.0-none", "0.0.0-none")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"for kernel 0\.0\.0-none: .*vmlinuz"):
        harness.require_bed(absent)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"for kernel 0\.0\.0-none"):
        harness.require_bed(absent)


def test_failure_messages_name_the_kernel() -> None:
    record = {"steps": [], "snapshots": {}, "notes": {}, "error": None}
    boot = harness.Boot(
        "ours", {"scenarios": {"start": record}}, "", 0, 1.0, Path("/"), kernel="5.10.0-32-amd64"
    )
    with pytest.raises(AssertionError, match=r"\[kernel 5\.10\.0-32-amd64, ours\] scenario start"):
        boot.scenario("start").check(False, "broken")
    with pytest.raises(AssertionError, match=r"\[kernel 5\.10\.0-32-amd64, ours\] scenario x"):
        boot.scenario("x")


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


def test_boot_queue_boots_each_plan_once_per_kernel_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    booted: list[tuple[str, str]] = []

    def fake_boot(impl: str, scenarios: list[str], **kwargs: object) -> harness.Boot:
        booted.append((str(kwargs["kernel"]), impl))
        return harness.Boot(impl, {}, "", 0, 0.0, Path("/"), kernel=str(kwargs["kernel"]))

    monkeypatch.setattr(harness, "boot", fake_boot)
    monkeypatch.delenv("O2CB_RK_RESULTS", raising=False)
    monkeypatch.setattr(harness, "missing_kernel", lambda kernel: [] if kernel.version else ["x"])
    ours = harness.Plan("ours", "ours", ("start",), "boots")
    ref = harness.Plan("reference", "reference", ("start",), "boots")
    old, new = harness.Kernel("5.10", "5.10"), harness.Kernel("6.12", "6.12")
    absent = harness.Kernel("trixie", None)
    queue = harness.BootQueue(1)
    queue.plan_ahead([(old, ours), (old, ref), (absent, ours), (new, ours)])
    first = queue.get(old, ours)
    assert queue.get(old, ours) is first and first.kernel == "5.10"
    assert queue.get(new, ours).kernel == "6.12"
    queue.shutdown()
    assert booted == [("5.10", "ours"), ("5.10", "reference"), ("6.12", "ours")]


def test_a_plan_is_declared_once() -> None:
    first = harness.plan("test-plan", "ours", ["start"], fixture="x")
    assert harness.plan("test-plan", "ours", ["start"], fixture="x") == first
    with pytest.raises(ValueError, match="declared twice"):
        harness.plan("test-plan", "reference", ["start"], fixture="x")
    del harness.PLANS["test-plan"]
