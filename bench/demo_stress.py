"""Demo under load: `cellops demo` run again and again while CPU hogs keep every core busy.

The demo's first two releases are good and must complete; its third is bad and must stop
at the canary. A health gate that fails a cell on one slow sample (a probe timing out
while the machine is busy) halts a good release, and the demo then fails. This bench runs
the demo N times in a row under load and counts the runs that failed, with the line that
says why.

Run: .venv/bin/python bench/demo_stress.py [--runs 20] [--hogs N] [--quick]
Exit status: 1 if any run failed. No network beyond 127.0.0.0/8; hogs stop at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELLOPS = Path(sys.executable).with_name("cellops")
RUN_TIMEOUT = 600.0
WHY = re.compile(r"cell-failed|rollout-halted|LEAKED|Error|Traceback")


def _hog() -> None:  # pragma: no cover - runs in a child process
    while True:
        pass


def run_demo() -> tuple[bool, float, str]:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(CELLOPS), "demo"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, time.monotonic() - started, f"timed out after {RUN_TIMEOUT:.0f}s"
    elapsed = time.monotonic() - started
    if done.returncode == 0:
        return True, elapsed, ""
    lines = (done.stdout + done.stderr).splitlines()
    why = [line.strip() for line in lines if WHY.search(line)]
    return False, elapsed, (why[0] if why else f"exit {done.returncode}")[:200]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--quick", action="store_true", help="one run (for make test)")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    hogs = [multiprocessing.Process(target=_hog, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    results: list[tuple[bool, float, str]] = []
    try:
        for index in range(runs):
            ok, elapsed, why = run_demo()
            results.append((ok, elapsed, why))
            verdict = "ok" if ok else f"FAILED: {why}"
            print(f"run {index + 1:>3}/{runs}: {elapsed:6.1f} s  {verdict}", flush=True)
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join(timeout=5)
    failed = [r for r in results if not r[0]]
    durations = [r[1] for r in results]
    passed = len(results) - len(failed)
    print(f"\n{passed}/{len(results)} demo runs passed with {args.hogs} CPU hogs")
    print(f"median run {statistics.median(durations):.1f} s, max {max(durations):.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
