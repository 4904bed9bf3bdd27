"""CLI start-up benchmark: the wall time of the everyday commands on the example fleet
(6 cells, 2 services), side by side with `kubectl kustomize` on podinfo's kustomize base
(../shared/realworld/podinfo/backend) on the same machine. Target: validate, plan, render,
status and get each <= 0.3 s (median).

Each command runs as a user runs it: a new process of the installed `cellops`, with
Python's bytecode cache warm (one unmeasured run first; PYTHONDONTWRITEBYTECODE is
dropped from the environment). `status` and `get` read a state folder whose store holds
the fleet at HEAD, all six cells applied (no agents run: the timing is the command's own).
Also reported: the bare interpreter start, the floor under every row.

Run: .venv/bin/python bench/cli.py [--quick] [--runs 11]
--quick (`make test`): 3 runs each; exit 1 when a command fails, never for a missed speed
target.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cellops.pipeline import Compiler
from cellops.render.brief import fleet_brief
from cellops.render.stored import service_json
from cellops.source.git import GitSource, create_repository
from cellops.store.sqlite import SqliteStore

ROOT = Path(__file__).parents[1]
CELLOPS = str(Path(sys.executable).with_name("cellops"))
PODINFO = ROOT.parent / "shared" / "realworld" / "podinfo" / "backend"
TARGET = 0.3


def fleet(workdir: Path) -> tuple[Path, Path]:
    """The example fleet committed in `workdir`, and a state folder with it applied."""
    repo, state = workdir / "fleet", workdir / "state"
    shutil.copytree(ROOT / "examples" / "fleet", repo)
    create_repository(repo, "example fleet")
    desired = Compiler(GitSource(repo)).desired("HEAD")
    store = SqliteStore(state / "cellops.db")
    store.set_setting("fleet.current", desired.revision)
    store.set_setting("fleet.current.cells", json.dumps(fleet_brief(desired)))  # as `up` keeps
    with store.transaction():
        for cell in desired.cells.values():
            for name, service in cell.services.items():
                store.set_applied(
                    cell.name,
                    name,
                    rev=service.revision,
                    hash_=service.hash,
                    depends_on=(),
                    now=time.time(),
                    spec=service_json(service),
                )
    store.close()
    return repo, state


def median_wall(command: list[str], runs: int, cwd: Path) -> tuple[float, float]:
    """The median wall time and the median CPU time (user + system) of `command`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["CELLOPS_CONFIG"] = "/nonexistent/config.yaml"  # no remote context
    walls, cpus = [], []
    for attempt in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
        if attempt:  # the first run warms the bytecode cache and the page cache
            walls.append(elapsed)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs each (make test)")
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="cellops-bench-cli-") as scratch:
        repo, state = fleet(Path(scratch))
        python = [sys.executable, "-c", "pass"]
        rows: list[tuple[str, tuple[float, float] | None]] = [
            ("python -c pass (interpreter start)", median_wall(python, runs, repo))
        ]
        commands = {
            "cellops validate": ["validate"],
            "cellops plan": ["plan"],
            "cellops render --cell eu-1": ["render", "--cell", "eu-1"],
            "cellops status": ["status", "--state-dir", str(state)],
            "cellops get cells": ["get", "cells", "--state-dir", str(state)],
        }
        for label, command in commands.items():
            rows.append((label, median_wall([CELLOPS, *command], runs, repo)))
        kubectl = shutil.which("kubectl")
        if kubectl and PODINFO.is_dir():
            rows.append(
                (
                    "kubectl kustomize podinfo/backend",
                    median_wall([kubectl, "kustomize", str(PODINFO)], runs, repo),
                )
            )
        else:
            rows.append(("kubectl kustomize podinfo/backend (kubectl or realworld missing)", None))
    print(
        f"CLI start-up, median of {runs} runs; load average {os.getloadavg()[0]:.1f}"
        f" on {os.cpu_count()} CPU(s) (target <= {TARGET:.1f} s wall for cellops rows)"
    )
    print(f"  {'command':<44} {'wall':>8} {'cpu':>8}")
    for label, measured in rows:
        if measured is None:
            print(f"  {label:<44} {'n/a':>8}")
            continue
        wall, cpu = measured
        mark = (
            ("  ok" if wall <= TARGET else "  over target") if label.startswith("cellops") else ""
        )
        print(f"  {label:<44} {wall:7.3f}s {cpu:7.3f}s{mark}")


if __name__ == "__main__":
    main()
