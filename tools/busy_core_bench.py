"""How the CPU default's matching time holds up when another program keeps a core busy (a laptop is never idle):
``python -m model bench`` on a quiet machine and beside plain busy loops, for each OpenMP wait policy and thread
count asked for, with the ratios to the quiet time. Run it on an otherwise quiet machine.

    .venv/bin/python tools/busy_core_bench.py [--runs 10] [--threads auto 2 1] [--policies ACTIVE PASSIVE] \
        [--busy_loops 1 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def busy_loop() -> None:
    while True:
        pass


def bench_ms(threads: str, policy: str, runs: int) -> float:
    """The median ms per frame of the cached-anchor path at the live setting (320x240, 300 matches)."""
    env = dict(os.environ, OMP_WAIT_POLICY=policy)
    done = subprocess.run([sys.executable, "-m", "model", "bench", "--resize", "320", "240", "--max_matches", "300",
                           "--runs", str(runs), "--threads", threads, "--no_kornia"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    found = re.search(r"cached anchor\s+([\d.]+) ms", done.stdout)
    if found is None:
        raise SystemExit(f"no 'cached anchor' line in bench's output:\n{done.stdout}")
    return float(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", nargs="+", default=["auto", "2", "1"],
                        help="thread counts to try; auto: as the app chooses them (model.cpu_load)")
    parser.add_argument("--policies", nargs="+", default=["ACTIVE"])
    parser.add_argument("--busy_loops", type=int, nargs="+", default=[1],
                        help="how many busy loops run beside it (one column each)")
    args = parser.parse_args()
    columns = "".join(f" {n} busy ms | x quiet |" for n in args.busy_loops)
    print(f"| OMP_WAIT_POLICY | threads | quiet ms |{columns}")
    print("| --- | --- | --- |" + " --- | --- |" * len(args.busy_loops))
    for policy in args.policies:
        for threads in args.threads:
            quiet = bench_ms(threads, policy, args.runs)
            cells = "".join(f" {busy:.1f} | {busy / quiet:.2f} |" for busy in
                            (_beside_busy_loops(count, threads, policy, args.runs) for count in args.busy_loops))
            print(f"| {policy} | {threads} | {quiet:.1f} |{cells}", flush=True)
    return 0


def _beside_busy_loops(count: int, threads: str, policy: str, runs: int) -> float:
    loops = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(count)]
    for loop in loops:
        loop.start()
    try:
        return bench_ms(threads, policy, runs)
    finally:
        for loop in loops:
            loop.terminate()
            loop.join()


if __name__ == "__main__":
    sys.exit(main())
