"""python3 -m benchmarks.bootbed [--rounds N]: ours against the reference in a booted Debian.

The machine is the boot bed's (tests/bootbed): Debian 12 booted from its own
disk under qemu, with systemd, our .deb installed (which diverts ocfs2-tools'
/etc/init.d/o2cb) and no file shared with the host.  In one boot, the guest
(benchmarks/bootbed_guest.py) runs status (offline), start, status (online)
and stop with each implementation's init script, the two in turn, each
round from the kernel's state after o2cb.service was stopped, and times
each command as a whole process.  Prints the medians of the wall and CPU
times and the ratios ours/reference.  Needs what the boot bed needs
(.ci/install-bootbed); one boot takes several minutes without KVM.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from bootbed import image, machine  # noqa: E402

from .bootbed_guest import VERBS  # noqa: E402

GUEST = Path(__file__).resolve().parent / "bootbed_guest.py"
# ours' status exits 3 when the cluster is offline (LSB); the reference's 0.
EXPECTED_RC = {("ours", "status offline"): 3}
SERVICE = """\
[Unit]
Description=Benchmark: time ours and the reference, then power off
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 -I /usr/local/sbin/bench-guest.py {rounds}
StandardOutput=journal+console
StandardError=journal+console
"""
FSTAB = "/dev/vda / ext4 defaults 0 1\n"  # no OCFS2 volume: nothing holds the cluster


def prepare(workdir: Path, rounds: int) -> None:
    """The bed's disk image, with the benchmark in place of the bed's scenarios."""
    subprocess.run(["make", "-s", "deb"], cwd=REPO, check=True, capture_output=True)
    deb = sorted((REPO / "dist").glob("o2cb-init_*_all.deb"))[-1]
    image.build(workdir, deb)
    image.make_volume(workdir / "vol.img")
    disk = workdir / "disk.img"
    image.replace_file(disk, "/usr/local/sbin/bench-guest.py", GUEST.read_text())
    image.replace_file(disk, "/etc/systemd/system/bed-driver.service",
                       SERVICE.format(rounds=rounds))
    image.replace_file(disk, "/etc/fstab", FSTAB)


def report(results: dict, rounds: int) -> tuple[list[str], list[str]]:
    """The lines to print, and the problems found."""
    problems = list(results.get("problems", []))
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for run in results.get("runs", []):
        expected = EXPECTED_RC.get((run["impl"], run["label"]), 0)
        if run["rc"] != expected:
            problems.append(f"round {run['round']} {run['impl']} {run['label']}: "
                            f"exit {run['rc']}, expected {expected}")
        times.setdefault((run["impl"], run["label"]), []).append((run["wall"], run["cpu"]))
    lines = [
        f"booted Debian, kernel {results.get('uname', '?')} under qemu, {rounds} rounds, "
        f"ours and reference in turn; guest load at the end: {results.get('loadavg', '?')}",
        f"{'verb':<16} {'ours ms':>8} {'ref ms':>8} {'ratio':>6} {'ours cpu':>9} "
        f"{'ref cpu':>8} {'ratio':>6}",
    ]
    for label, _verb in VERBS:
        ours, ref = times.get(("ours", label)), times.get(("reference", label))
        if not ours or not ref:
            continue
        wall = [statistics.median(t[0] for t in side) * 1000 for side in (ours, ref)]
        cpu = [statistics.median(t[1] for t in side) * 1000 for side in (ours, ref)]
        lines.append(f"{label:<16} {wall[0]:>8.0f} {wall[1]:>8.0f} {wall[0] / wall[1]:>6.2f} "
                     f"{cpu[0]:>9.0f} {cpu[1]:>8.0f} {cpu[0] / max(cpu[1], 1e-9):>6.2f}")
    return lines, problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.bootbed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of each implementation")
    args = parser.parse_args(argv)
    missing = machine.missing_prerequisites()
    if missing:
        print("boot bed unavailable: " + "; ".join(missing), file=sys.stderr)
        return 1
    # Beside the bed's own run directory, never in it: the bed's tests may run too.
    workdir = image.cache_dir() / "bootbed-bench"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    prepare(workdir, args.rounds)
    machine.BOOT_TIMEOUT = int(os.environ.get("O2CB_BOOTBED_TIMEOUT", "2400"))
    boot = machine.boot(workdir, "bench")
    if "bench.json" not in boot.files:
        print(f"the guest recorded no results after {boot.seconds:.0f} s; console in "
              f"{workdir}/console-bench.log", file=sys.stderr)
        return 1
    lines, problems = report(json.loads(boot.files["bench.json"]), args.rounds)
    print("\n".join(lines))
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"boot took {boot.seconds:.0f} s; logs of each implementation in "
          f"{workdir}/results-bench.img (a tar)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
