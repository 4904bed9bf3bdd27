"""Planning benchmark: cold and incremental `Compiler.plan` on a synthetic fleet repo.

For each size (cells x services) it writes a realistic fleet as a real Git repo in a temp
dir, checks that it validates, then measures:

- cold: validate + render + plan of HEAD from nothing, `Compiler(GitSource(repo)).plan(head,
  None)`, each repeat in a fresh Python process (imports, parse cache, memos all cold). The
  time is taken inside that process, from before cellops is imported to after the plan; the
  peak RSS is the child's own `ru_maxrss`.
- incremental: in one warm process whose Compiler has already planned the previous commit,
  commit a change to one service (an env value in its service.yaml) and time
  `compiler.plan(new_head, previous_head)`. The plan must touch every cell where that
  service runs, with exactly one change each.

Run: .venv/bin/python bench/plan.py [--cells N --services M | --sizes 100x10,1000x50]
     [--repeat R] [--profile [TOP]] [--strict] [--quick]
--quick (`make test`): 40 cells x 12 services, one cold run, four incremental steps (a
provider with an override, a plain service, a region-only one, another provider).
Exit status: 1 if the fleet or a plan is not what was expected; with --strict, 2 if a
target is missed (otherwise a missed target is only marked FAIL in the table).
No network; temp dirs are removed; every child process has a timeout.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.util
import json
import os
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from plan_fleet import (
    BUMP_KEY,
    BenchError,
    Size,
    bump_service,
    create_fleet_repo,
    running_cells,
    service_name,
)
from plan_report import ColdRun, IncrementalRun, Result, details, machine, print_profile, table

if TYPE_CHECKING:
    from cellops.pipeline import Compiler, PlanResult

ROOT = Path(__file__).resolve().parents[1]
MAX_CELLS = 100_000
MAX_SERVICES = 5_000
QUICK_SIZE, QUICK_STEPS = "40x12", 4

# --------------------------------------------------------------------------- measuring


def plan_counts(result: PlanResult) -> tuple[int, int]:
    """(cells, changes) in the plan."""
    cells = [c for wave in result.plan.waves for c in wave.cells]
    return len(cells), sum(len(c.changes) for c in cells)


def validate(repo: Path, head: str, size: Size) -> Compiler:
    """Load + plan HEAD from nothing; returns the (now warm) Compiler. Raises on bad fleets."""
    from cellops.model.errors import RevisionRejected
    from cellops.pipeline import Compiler
    from cellops.source.git import GitSource

    compiler = Compiler(GitSource(repo))
    try:
        result = compiler.plan(head, None)
    except RevisionRejected as exc:
        shown = "\n".join(f"  {p}" for p in exc.problems[:10])
        raise BenchError(f"the synthetic fleet does not validate: {exc}\n{shown}") from exc
    revision = result.after
    for problem in revision.warnings[:5]:
        print(f"  warning: {problem}", file=sys.stderr)
    expected = running_cells(size)
    if {name: frozenset(cells) for name, cells in revision.placement.items()} != expected:
        raise BenchError("services are placed in other cells than the generator put them in")
    placements = sum(len(cells) for cells in expected.values())
    cells, changes = plan_counts(result)
    if cells != size.cells or changes != placements:
        raise BenchError(
            f"cold plan covers {cells} cells / {changes} changes, expected"
            f" {size.cells} / {placements}"
        )
    return compiler


class GcTimer:
    """Time spent in the cyclic garbage collector while active (via gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._started = 0.0

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections += 1


def max_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024


def cold_child(repo: str, rev: str, profile_out: str | None) -> None:
    """Runs in a fresh interpreter: import cellops, plan `rev` from nothing, report JSON."""
    profiler = cProfile.Profile() if profile_out else None
    with GcTimer() as gc_timer:
        start = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        from cellops.pipeline import Compiler
        from cellops.source.git import GitSource

        imported = time.perf_counter()
        result = Compiler(GitSource(repo)).plan(rev, None)
        end = time.perf_counter()
    if profiler is not None and profile_out is not None:
        profiler.disable()
        profiler.dump_stats(profile_out)
    cells, changes = plan_counts(result)
    report = {
        "seconds": end - start,
        "import_seconds": imported - start,
        "gc_seconds": gc_timer.seconds,
        "rss_mib": max_rss_mib(),
        "cells": cells,
        "changes": changes,
    }
    print(json.dumps(report))


def run_cold(repo: Path, rev: str, timeout: float, profile_out: Path | None = None) -> ColdRun:
    command = [sys.executable, str(Path(__file__).resolve()), "--cold-child", str(repo), rev]
    if profile_out is not None:
        command += ["--profile-out", str(profile_out)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"cold run took more than {timeout:g} s (killed)") from exc
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise BenchError(f"cold run failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return ColdRun(
        seconds=float(data["seconds"]),
        import_seconds=float(data["import_seconds"]),
        gc_seconds=float(data["gc_seconds"]),
        process_seconds=elapsed,
        rss_mib=float(data["rss_mib"]),
        cells=int(data["cells"]),
        changes=int(data["changes"]),
    )


def changed_service(step: int, size: Size) -> tuple[str, frozenset[str]]:
    """Spread the changes over the services (providers, region-only, overridden...); the
    service and the cells it runs in."""
    name = service_name((step * 7) % size.services)
    return name, running_cells(size)[name]


def check_incremental(
    result: PlanResult, service: str, expected: frozenset[str], seconds: float, gc_seconds: float
) -> IncrementalRun:
    """The plan touches exactly the cells running `service`, with one change each."""
    from cellops.diff import Action

    cells, changes = plan_counts(result)
    planned = {c.cell for wave in result.plan.waves for c in wave.cells}
    entries = [ch for wave in result.plan.waves for c in wave.cells for ch in c.changes]
    ok = (
        planned == expected
        and changes == cells
        and all(ch.service == service and ch.action is Action.CONFIGURED for ch in entries)
    )
    return IncrementalRun(service, seconds, gc_seconds, cells, changes, len(expected), ok)


def incremental_step(
    compiler: Compiler,
    repo: Path,
    previous: str,
    change: tuple[str, frozenset[str]],  # the service to change, the cells it runs in
    profiler: cProfile.Profile | None,
) -> tuple[IncrementalRun, str]:
    from cellops.source.git import commit_all

    service, expected = change
    bump_service(repo, service)
    head = commit_all(repo, f"{service}: bump {BUMP_KEY}")
    gc.collect()  # garbage of the previous step is not this step's cost
    with GcTimer() as gc_timer:
        start = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        result = compiler.plan(head, previous)
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - start
    return check_incremental(result, service, expected, seconds, gc_timer.seconds), head


def run_incremental(
    compiler: Compiler, repo: Path, head: str, size: Size, repeat: int
) -> tuple[list[IncrementalRun], str]:
    """`compiler` has planned `head`; each step commits one change and plans it."""
    runs = []
    for step in range(repeat):
        run, head = incremental_step(compiler, repo, head, changed_service(step, size), None)
        runs.append(run)
    return runs, head


def profile_size(
    compiler: Compiler,
    repo: Path,
    size: Size,
    *,
    heads: tuple[str, str],
    timeout: float,
    top: int,
) -> None:
    """cProfile one cold run of the first head (in a child), one more incremental step."""
    first, last = heads
    profile_file = repo.parent / "cold.prof"
    cold = run_cold(repo, first, timeout, profile_file)
    title = f"cold {size.label} (one run, {cold.seconds:.2f} s under the profiler)"
    print_profile(title, pstats.Stats(str(profile_file)), top)
    profiler = cProfile.Profile()
    run, _ = incremental_step(compiler, repo, last, changed_service(0, size), profiler)
    title = (
        f"incremental {size.label} ({run.service}, {run.seconds * 1000:.1f} ms under the profiler)"
    )
    print_profile(title, pstats.Stats(profiler), top)


# --------------------------------------------------------------------------- main


def bench_size(size: Size, repeat: int, steps: int, timeout: float, profile_top: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="cellops-bench-", ignore_cleanup_errors=True) as tmp:
        repo = Path(tmp) / "fleet"
        started = time.perf_counter()
        head = create_fleet_repo(repo, size)
        compiler = validate(repo, head, size)
        print(
            f"{size.label}: fleet repo written and validated in"
            f" {time.perf_counter() - started:.1f} s; measuring...",
            file=sys.stderr,
        )
        cold = [run_cold(repo, head, timeout) for _ in range(repeat)]
        for run in cold:
            if (run.cells, run.changes) != (cold[0].cells, cold[0].changes):
                raise BenchError("cold runs disagree about the plan")
        incremental, last = run_incremental(compiler, repo, head, size, steps)
        if profile_top:
            profile_size(compiler, repo, size, heads=(head, last), timeout=timeout, top=profile_top)
    return Result(size, cold, incremental)


def parse_sizes(text: str) -> list[Size]:
    sizes = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", part)
        if match is None:
            raise argparse.ArgumentTypeError(f"{part!r}: expected CELLSxSERVICES, e.g. 1000x50")
        sizes.append(check_size(Size(int(match.group(1)), int(match.group(2)))))
    return sizes


def check_size(size: Size) -> Size:
    if not (1 <= size.cells <= MAX_CELLS and 1 <= size.services <= MAX_SERVICES):
        raise argparse.ArgumentTypeError(
            f"{size.label}: expected 1-{MAX_CELLS} cells and 1-{MAX_SERVICES} services"
        )
    return size


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cells", type=int, default=1000, help="cells (default 1000)")
    parser.add_argument("--services", type=int, default=50, help="services (default 50)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measure (default 5)")
    parser.add_argument(
        "--sizes", type=parse_sizes, help="several sizes, e.g. 100x10,1000x50 (overrides above)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per cold child (default 300)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=15,
        default=0,
        metavar="TOP",
        help="also cProfile one cold and one incremental run; print the top TOP (15) functions",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 2 when a target is missed"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_SIZE}, one cold run, {QUICK_STEPS} steps"
    )
    parser.add_argument("--cold-child", nargs=2, metavar=("REPO", "REV"), help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.steps = args.repeat
    if args.quick:
        args.sizes, args.repeat, args.steps = parse_sizes(QUICK_SIZE), 1, QUICK_STEPS
    if args.sizes is None:
        try:
            args.sizes = [check_size(Size(args.cells, args.services))]
        except argparse.ArgumentTypeError as exc:
            parser.error(str(exc))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    if importlib.util.find_spec("cellops") is None:  # not installed: use the source tree
        sys.path.insert(0, str(ROOT / "src"))
    args = parse_args(argv)
    if args.cold_child:
        cold_child(args.cold_child[0], args.cold_child[1], args.profile_out)
        return 0
    results = []
    try:
        for size in args.sizes:
            results.append(bench_size(size, args.repeat, args.steps, args.timeout, args.profile))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print()
    print(machine())
    print(
        f"median of {args.repeat} cold runs (fresh processes) and {args.steps} incremental"
        " steps (warm process)"
    )
    print()
    print(table(results))
    print()
    for result in results:
        print(details(result))
    if any(not r.ok for result in results for r in result.incremental):
        return 1
    return 2 if args.strict and not all(r.meets_targets for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
