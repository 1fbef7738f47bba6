"""`make demo`: the whole o2cb story on Debian's real kernel, as a transcript.

    python -m tests.realkernel.demo

Checks the bed's prerequisites (and, as root, installs the missing ones with
``.ci/install-realkernel --demo``: one kernel, no build tools), boots Debian's
kernel under qemu with a prepared cluster (two nodes, this guest being
``virtme-ng``), and runs: ``o2cb start``, ``o2cb status``, mkfs and mount of
an OCFS2 volume, ``o2cb stop`` (refused while mounted), umount, ``o2cb stop``.
Prints each command with its output and exit code; exits 1 if the story did
not go as it should.
"""

from __future__ import annotations

import os
import subprocess
import sys

from . import harness

# label of the step -> the exit code the story expects
EXPECTED = {
    "start": 0,
    "status": 0,
    "mkfs": 0,
    "mount": 0,
    "stop while mounted": 1,
    "read": 0,
    "umount": 0,
    "stop after umount": 0,
    "status after stop": 3,
}
COMMENTS = {
    "config": "The prepared configuration (written into the guest's /etc)",
    "start": "Bring the cluster online: drivers, configfs, /dlm, nodes, timeouts",
    "status": "What is loaded and whether the cluster is online",
    "kernel": "The kernel's own view: modules and mounts",
    "make image": "An OCFS2 volume on a loop device, formatted for this cluster",
    "write": "A file on the mounted volume",
    "stop while mounted": "Stopping now would pull the cluster from under the volume: refused",
    "read": "The volume is still there",
    "umount": "Unmount the volume",
    "stop after umount": "Now stop succeeds and unloads everything it loaded",
    "status after stop": "Offline: status exits 3 (LSB: not running)",
}


def prepare() -> list[str]:
    """What the demo lacks; as root, installs the demo's share of the bed first."""
    missing = harness.missing_prerequisites()
    if missing and os.geteuid() == 0 and harness.INSTALL_SCRIPT.exists():
        print("Installing the real-kernel prerequisites:", "; ".join(missing), flush=True)
        # The one kernel the demo boots: $O2CB_RK_KERNEL's suite, else this machine's.
        chosen = os.environ.get("O2CB_RK_KERNEL", "")
        env = dict(os.environ)
        env.setdefault("O2CB_RK_SUITES", chosen if chosen in harness.SUITES else harness.HOST_SUITE)
        subprocess.run(["bash", str(harness.INSTALL_SCRIPT), "--demo"], env=env, check=False)
        missing = harness.missing_prerequisites()
    return missing


def main() -> int:
    missing = prepare()
    if missing:
        print("Cannot run the demo:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    version = harness.kernel_version()
    print(f"Booting Debian's kernel {version} under qemu (software emulation, about a minute)...")
    boot = harness.boot("ours", ["demo"], fork_ours=False)
    try:
        result = boot.scenario("demo")
    except AssertionError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"Guest up: kernel {boot.results.get('uname')}, hostname {boot.results.get('hostname')}")
    for step in result.steps:
        comment = COMMENTS.get(step["label"])
        print()
        if comment:
            print(f"# {comment}")
        print(f"$ {step['command']}")
        for text in (step["stdout"], step["stderr"]):
            if text.strip():
                print(text.rstrip("\n"))
        print(f"[exit {step['rc']}]")
    codes = {step["label"]: step["rc"] for step in result.steps}
    wrong = [
        f"{label}: exit {codes.get(label, 'none (not run)')}, expected {rc}"
        for label, rc in EXPECTED.items()
        if codes.get(label) != rc
    ]
    print()
    print(f"({boot.seconds:.0f} s including the boot)")
    if wrong or result.record.get("error"):
        print("The story did not go as expected:\n  " + "\n  ".join(wrong), file=sys.stderr)
        if result.record.get("error"):
            print(result.record["error"], file=sys.stderr)
        return 1
    print("All as expected: online, refused while mounted, clean stop.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
