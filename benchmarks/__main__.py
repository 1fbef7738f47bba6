"""python3 -m benchmarks [--rounds N] [--case NAME ...]: time ours against the reference.

Needs root: the benchmark runs in a private mount and UTS namespace
(util-linux ``unshare``), which it enters by starting itself again; every
mount it makes vanishes with it.  Without Debian's ocfs2-tools
(/etc/init.d/o2cb) it times ours alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from .fakeroot import HOSTNAME, REFERENCE_SCRIPT, FakeRoot, SetupError
from .harness import (
    CASES,
    OURS,
    REFERENCE,
    Bench,
    floor_implementation,
    implementations,
    ours_command,
    report_lines,
)

INSIDE = "O2CB_BENCH_NAMESPACE"
HOST_UTS = "O2CB_BENCH_HOST_UTS"
REPO = Path(__file__).resolve().parent.parent


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="runs of each implementation")
    parser.add_argument("--case", action="append", default=[],
                        help="run only this case (repeatable); names as printed")
    parser.add_argument("--no-count", action="store_true",
                        help="skip the extra run that counts processes")
    parser.add_argument("--ours-only", action="store_true", help="do not run the reference")
    parser.add_argument("--reference", type=Path, default=REFERENCE_SCRIPT,
                        help="the reference init script (default: %(default)s)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    return parser.parse_args(argv)


def enter_namespace(argv: list[str]) -> int:
    """Start this benchmark again in private mount and UTS namespaces."""
    env = dict(os.environ, **{INSIDE: "1", HOST_UTS: str(uts_namespace())})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    command = ["unshare", "--mount", "--uts", "--propagation", "private",
               sys.executable, "-m", "benchmarks", *argv]
    return subprocess.run(command, env=env, cwd=REPO, check=False).returncode


def uts_namespace() -> int:
    return os.stat("/proc/self/ns/uts").st_ino


def own_uts_namespace() -> bool:
    """Whether unshare gave this process a UTS namespace of its own (not its caller's)."""
    return os.environ.get(HOST_UTS, "") not in ("", str(uts_namespace()))


def main(argv: list[str]) -> int:
    args = parse(argv)
    cases = [case for case in CASES if not args.case or case.name in args.case]
    if args.list:
        print("\n".join(case.name for case in CASES))
        return 0
    unknown = set(args.case) - {case.name for case in CASES}
    if unknown:
        print(f"unknown case(s): {', '.join(sorted(unknown))}; see --list", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("the benchmark needs root (private namespaces, chroot)", file=sys.stderr)
        return 4
    if os.environ.get(INSIDE) != "1":
        return enter_namespace(argv)
    if not own_uts_namespace():
        print("not in a private UTS namespace: refusing to set the host name", file=sys.stderr)
        return 1
    socket.sethostname(HOSTNAME)
    workdir = tempfile.mkdtemp(prefix="o2cb-bench-")
    fake = FakeRoot(Path(workdir) / "root")
    try:
        return run(args, cases, fake, Path(workdir))
    except SetupError as error:
        print(f"benchmark set-up failed: {error}", file=sys.stderr)
        return 1
    finally:
        fake.unmount_host_tree()  # raises rather than let rmtree reach a host directory
        shutil.rmtree(workdir)


def run(args: argparse.Namespace, cases: list, fake: FakeRoot, workdir: Path) -> int:
    scratch = workdir / "scratch"
    scratch.mkdir()
    fake.build(args.reference)
    fake.mount_host_tree()
    impls = implementations(fake, ours_command())
    check = subprocess.run([*impls[OURS].command[:-2], "--version"], capture_output=True,
                           text=True, env=impls[OURS].env, check=False)
    if check.returncode != 0:
        raise SetupError(
            f"ours does not run ({' '.join(impls[OURS].command[:-2])}): "
            f"{(check.stderr or check.stdout).strip().splitlines()[-1:]}; install it: pip install ."
        )
    if args.ours_only or not args.reference.is_file():
        print(f"{args.reference} not run: timing ours alone", file=sys.stderr)
        del impls[REFERENCE]
    print(f"ours: {' '.join(impls[OURS].command[:-2])}", file=sys.stderr)
    bench = Bench(fake, impls, scratch, floor_implementation(impls[OURS]))
    results = []
    for case in cases:
        print(f"... {case.name}", file=sys.stderr, flush=True)
        results.append(bench.measure(case, args.rounds, count=not args.no_count))
    print("\n".join(report_lines(results, args.rounds)))
    return 1 if any(result.problems for result in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
