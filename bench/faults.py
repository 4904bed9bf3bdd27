"""Fault benchmark: many more seeded SIGKILL trials than the suite's 20.

Runs tests/integration/test_controller_faults.py::test_sigkill_at_random_points_of_a_rollout
with CELLOPS_FAULT_TRIALS seeds (each trial: a real controller process killed once or
twice at random points of a multi-wave rollout, restarted, and the rollout's invariants
checked), and prints a table.

Run: .venv/bin/python bench/faults.py [--trials 100]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/integration/test_controller_faults.py::test_sigkill_at_random_points_of_a_rollout"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
        cwd=ROOT,
        env={**os.environ, "CELLOPS_FAULT_TRIALS": str(args.trials)},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.time() - started
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", summary)) else 0
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", summary)) else 0
    print(
        f"\nSIGKILL trials: {args.trials}; passed {passed}; failed {failed};"
        f" {elapsed:.0f} s in all ({elapsed / max(args.trials, 1):.1f} s per trial)"
    )
    if failed or result.returncode != 0:
        print(result.stdout[-4000:])
        raise SystemExit(1)


if __name__ == "__main__":
    main()
