"""How the CPU default's matching time holds up when another program keeps a core busy (a laptop is never idle):
``python -m model bench`` on a quiet machine and beside a plain busy loop, for each OpenMP wait policy and thread
count asked for, with the ratios to the quiet time. Run it on an otherwise quiet machine.

    .venv/bin/python tools/busy_core_bench.py [--runs 10] [--threads 2 1] [--policies ACTIVE PASSIVE]
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
    args = parser.parse_args()
    print("| OMP_WAIT_POLICY | threads | quiet ms | one core busy ms | busy / quiet |")
    print("| --- | --- | --- | --- | --- |")
    for policy in args.policies:
        for threads in args.threads:
            quiet = bench_ms(threads, policy, args.runs)
            loop = multiprocessing.Process(target=busy_loop, daemon=True)
            loop.start()
            try:
                busy = bench_ms(threads, policy, args.runs)
            finally:
                loop.terminate()
                loop.join()
            print(f"| {policy} | {threads} | {quiet:.1f} | {busy:.1f} | {busy / quiet:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
