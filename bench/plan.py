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
     [--repeat R] [--profile [TOP]] [--strict]
Exit status: 1 if the fleet or a plan is not what was expected; with --strict, 2 if a
target is missed (otherwise a missed target is only marked FAIL in the table).
No network; temp dirs are removed; every child process has a timeout.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import importlib.util
import json
import os
import platform
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cellops.pipeline import Compiler, PlanResult

ROOT = Path(__file__).resolve().parents[1]
COLD_TARGET_S = 5.0
RSS_TARGET_MIB = 1024.0
INCREMENTAL_TARGET_MS = 100.0
MAX_CELLS = 100_000
MAX_SERVICES = 5_000

REGISTRY = "registry.example.com"
REGIONS = {  # region label -> short prefix of cell names
    "us-east-1": "use1",
    "us-west-2": "usw2",
    "eu-west-1": "euw1",
    "eu-central-1": "euc1",
    "ap-southeast-1": "apse1",
}
# Services of one local cell share its address, so each service gets its own ports.
HTTP_PORT_BASE = 10_000
METRICS_PORT_BASE = 20_000
BUMP_KEY = "BENCH_REVISION"
_BUMP_LINE = re.compile(rf'^(\s+{BUMP_KEY}: )"(\d+)"$', re.MULTILINE)


class BenchError(Exception):
    """The benchmark could not run as intended (bad fleet, failed child, wrong plan)."""


@dataclass(frozen=True)
class Size:
    cells: int
    services: int

    @property
    def label(self) -> str:
        return f"{self.cells} × {self.services}"


# --------------------------------------------------------------------------- fleet repo


@dataclass(frozen=True)
class ServiceShape:
    """What one synthetic service looks like; the rules keep every contract satisfied."""

    index: int
    name: str
    provides: bool  # provides <name>/v1 and runs in every cell
    consumes: str | None  # a provider it consumes and depends on
    region: str | None  # runs only in this region (cell selector)
    override_region: str | None  # an override patch for this region
    metrics_port: bool


def service_name(index: int) -> str:
    return f"svc-{index:03d}"


def regions_for(cells: int) -> list[str]:
    return list(REGIONS)[: max(1, min(len(REGIONS), cells))]


def service_shapes(size: Size) -> list[ServiceShape]:
    """Providers (every third) select all cells, so any consumer runs only where one runs."""
    regions = regions_for(size.cells)
    shapes = []
    for i in range(size.services):
        provides = i % 3 == 0
        consumes = service_name(3 * ((i - 1) // 3)) if i % 5 == 1 else None
        region = regions[i % len(regions)] if not provides and i % 4 == 2 else None
        override = regions[(i // 4) % len(regions)] if region is None and i % 4 == 0 else None
        shapes.append(
            ServiceShape(
                index=i,
                name=service_name(i),
                provides=provides,
                consumes=consumes,
                region=region,
                override_region=override,
                metrics_port=i % 2 == 0,
            )
        )
    return shapes


def fleet_yaml(size: Size) -> str:
    first_region = regions_for(size.cells)[0]
    return f"""\
# Synthetic fleet for bench/plan.py: {size.cells} cells, {size.services} services.
apiVersion: cellops.dev/v1
kind: Fleet
metadata:
  name: bench
spec:
  rollout:
    waves:
      - name: canary
        selector: {{ring: canary}}
        bake: 10m
      - name: first-region
        selector: {{region: {first_region}}}
        maxConcurrent: 10
        bake: 5m
      - name: rest
        percent: 100
        maxConcurrent: 50
        bake: 2m
    failureBudget: 1
    onFailure: rollback
    progressDeadline: 10m
  imagePolicy:
    requireDigest: true
    allowedRegistries: [{REGISTRY}]
  defaults:
    replicas: 2
    env:
      LOG_LEVEL: info
"""


def cell_name(index: int, region: str) -> str:
    return f"{REGIONS[region]}-{index:05d}"


def cell_yaml(index: int, size: Size) -> tuple[str, str]:
    """(name, document) of cell `index`; cell 0 is the canary, ~5% more are ring early."""
    regions = regions_for(size.cells)
    region = regions[index % len(regions)]
    name = cell_name(index, region)
    if index == 0:
        ring = "canary"
    elif index <= max(1, size.cells // 20):
        ring = "early"
    else:
        ring = "main"
    text = f"""\
apiVersion: cellops.dev/v1
kind: Cell
metadata:
  name: {name}
  labels:
    region: {region}
    ring: {ring}
  annotations:
    owner: team-{index % 7}
spec:
  backend: local
  capacity:
    maxTenants: {100 + 50 * (index % 5)}
    cpu: "16"
    memory: 32Gi
  state: active
"""
    return name, text


def service_yaml(shape: ServiceShape) -> str:
    name = shape.name
    digest = hashlib.sha256(name.encode()).hexdigest()
    lines = [
        "apiVersion: cellops.dev/v1",
        "kind: Service",
        "metadata:",
        f"  name: {name}",
        "  labels:",
        f"    team: team-{shape.index % 7}",
        "spec:",
    ]
    if shape.region is not None:
        lines += ["  cells:", f"    selector: {{region: {shape.region}}}"]
    lines += [
        f"  image: {REGISTRY}/bench/{name}@sha256:{digest}",
        "  run:",
        "    command: [python3, server.py]",
        "    cwd: app",
        "  ports:",
        f"    - {{name: http, port: {HTTP_PORT_BASE + shape.index}}}",
    ]
    if shape.metrics_port:
        lines.append(f"    - {{name: metrics, port: {METRICS_PORT_BASE + shape.index}}}")
    lines += [
        "  env:",
        f"    SERVICE_NAME: {name}",
        f'    {BUMP_KEY}: "0"',
        "    FEATURE_FLAGS: checkout,search",
        "  probes:",
        "    readiness:",
        "      http: {path: /healthz, port: http}",
        "      periodSeconds: 5",
        "    liveness:",
        "      http: {path: /livez, port: http}",
        "      periodSeconds: 10",
        "      failureThreshold: 3",
        "  resources:",
        "    requests: {cpu: 100m, memory: 128Mi}",
        "    limits: {cpu: 500m, memory: 512Mi}",
    ]
    contracts = []
    if shape.provides:
        contracts.append(f"    provides: [{name}/v1]")
    if shape.consumes is not None:
        contracts.append(f"    consumes: [{shape.consumes}/v1]")
    if contracts:
        lines += ["  contracts:", *contracts]
    if shape.consumes is not None:
        lines.append(f"  dependsOn: [{shape.consumes}]")
    if shape.override_region is not None:
        lines += [
            "  overrides:",
            f"    - cells: {{selector: {{region: {shape.override_region}}}}}",
            "      patch:",
            "        replicas: 4",
            "        env: {REGION_TUNING: high-traffic}",
        ]
    return "\n".join(lines) + "\n"


def app_code(name: str) -> str:
    return f'''\
"""{name}: a tiny HTTP service (synthetic, for the planning benchmark)."""

import http.server
import os


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path in ("/healthz", "/livez") else 404)
        self.end_headers()


http.server.ThreadingHTTPServer(("", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
'''


def write_fleet(root: Path, size: Size) -> None:
    (root / "cells").mkdir(parents=True)
    (root / "cellops.yaml").write_text(fleet_yaml(size))
    for i in range(size.cells):
        name, text = cell_yaml(i, size)
        (root / "cells" / f"{name}.yaml").write_text(text)
    for shape in service_shapes(size):
        folder = root / "services" / shape.name
        (folder / "app").mkdir(parents=True)
        (folder / "service.yaml").write_text(service_yaml(shape))
        (folder / "app" / "server.py").write_text(app_code(shape.name))


def create_fleet_repo(root: Path, size: Size) -> str:
    from cellops.source.git import create_repository

    write_fleet(root, size)
    return create_repository(root, f"synthetic fleet: {size.cells} cells, {size.services} services")


def bump_service(root: Path, name: str) -> None:
    """Change one env value in the service's service.yaml (a new workload hash)."""
    path = root / "services" / name / "service.yaml"
    text = path.read_text()
    match = _BUMP_LINE.search(text)
    if match is None:
        raise BenchError(f"{path}: no {BUMP_KEY} line to bump")
    value = int(match.group(2)) + 1
    path.write_text(text[: match.start()] + f'{match.group(1)}"{value}"' + text[match.end() :])


# --------------------------------------------------------------------------- measuring


def plan_counts(result: PlanResult) -> tuple[int, int]:
    """(cells, changes) in the plan."""
    cells = [c for wave in result.plan.waves for c in wave.cells]
    return len(cells), sum(len(c.changes) for c in cells)


def validate(repo: Path, head: str) -> Compiler:
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
    placements = sum(len(cells) for cells in revision.placement.values())
    cells, changes = plan_counts(result)
    if cells != len(revision.cells) or changes != placements:
        raise BenchError(
            f"cold plan covers {cells} cells / {changes} changes, expected"
            f" {len(revision.cells)} / {placements}"
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


@dataclass(frozen=True)
class ColdRun:
    seconds: float  # inside the child: import cellops + plan
    import_seconds: float
    gc_seconds: float
    process_seconds: float  # seen from the parent: interpreter start to exit
    rss_mib: float
    cells: int
    changes: int


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


@dataclass(frozen=True)
class IncrementalRun:
    service: str
    seconds: float
    gc_seconds: float
    cells: int
    changes: int
    expected_cells: int
    ok: bool


def changed_service(step: int, services: int) -> str:
    """Spread the changes over the services (providers, region-only, overridden...)."""
    return service_name((step * 7) % services)


def check_incremental(
    result: PlanResult, service: str, seconds: float, gc_seconds: float
) -> IncrementalRun:
    from cellops.diff import Action

    cells, changes = plan_counts(result)
    expected = len(result.after.placement[service])
    entries = [ch for wave in result.plan.waves for c in wave.cells for ch in c.changes]
    ok = (
        cells == expected
        and changes == expected
        and all(ch.service == service and ch.action is Action.CONFIGURED for ch in entries)
    )
    return IncrementalRun(service, seconds, gc_seconds, cells, changes, expected, ok)


def incremental_step(
    compiler: Compiler, repo: Path, previous: str, service: str, profiler: cProfile.Profile | None
) -> tuple[IncrementalRun, str]:
    from cellops.source.git import commit_all

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
    return check_incremental(result, service, seconds, gc_timer.seconds), head


def run_incremental(
    compiler: Compiler, repo: Path, head: str, size: Size, repeat: int
) -> tuple[list[IncrementalRun], str]:
    """`compiler` has planned `head`; each step commits one change and plans it."""
    runs = []
    for step in range(repeat):
        run, head = incremental_step(
            compiler, repo, head, changed_service(step, size.services), None
        )
        runs.append(run)
    return runs, head


# --------------------------------------------------------------------------- profiling


def _short_file(path: str) -> str:
    if path == "~":
        return "<built-in>"
    for marker in ("/site-packages/", f"{ROOT}/"):
        if marker in path:
            return path.split(marker, 1)[1]
    if path.startswith(sys.base_prefix):
        return "<stdlib>/" + Path(path).name
    return path


def print_profile(title: str, stats: pstats.Stats, top: int) -> None:
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = getattr(
        stats, "stats", {}
    )
    total = getattr(stats, "total_tt", 0.0)
    for heading, by_cumulative in (("cumulative time", True), ("own time", False)):
        print(f"\n{title}: top {top} by {heading} (profiled total {total:.3f} s)")
        print(f"  {'cum s':>8} {'own s':>8} {'calls':>10}  function")
        rows = sorted(
            raw.items(), key=lambda kv: kv[1][3] if by_cumulative else kv[1][2], reverse=True
        )[:top]
        for (file, line, func), (_cc, calls, own, cum, _callers) in rows:
            where = f"{_short_file(file)}:{line}" if file != "~" else "<built-in>"
            print(f"  {cum:8.3f} {own:8.3f} {calls:10d}  {func}  ({where})")


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
    run, _ = incremental_step(compiler, repo, last, changed_service(0, size.services), profiler)
    title = (
        f"incremental {size.label} ({run.service}, {run.seconds * 1000:.1f} ms under the profiler)"
    )
    print_profile(title, pstats.Stats(profiler), top)


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Result:
    size: Size
    cold: list[ColdRun]
    incremental: list[IncrementalRun]

    @property
    def cold_seconds(self) -> float:
        return statistics.median(r.seconds for r in self.cold)

    @property
    def cold_rss(self) -> float:
        return statistics.median(r.rss_mib for r in self.cold)

    @property
    def incremental_ms(self) -> float:
        return statistics.median(r.seconds for r in self.incremental) * 1000

    @property
    def meets_targets(self) -> bool:
        return (
            self.cold_seconds <= COLD_TARGET_S
            and self.cold_rss <= RSS_TARGET_MIB
            and self.incremental_ms <= INCREMENTAL_TARGET_MS
        )


def mark(value: float, limit: float) -> str:
    return "✓ pass" if value <= limit else "✗ FAIL"


def touched(runs: Sequence[IncrementalRun]) -> str:
    low = min(r.cells for r in runs)
    high = max(r.cells for r in runs)
    cells = f"{low}" if low == high else f"{low}-{high}"
    ok = all(r.ok for r in runs)
    return f"{cells} cells, 1 change each {'✓' if ok else '✗ WRONG'}"


def table(results: Sequence[Result]) -> str:
    rows = [
        [
            "cells × services",
            "cold median (s)",
            "cold peak RSS (MiB)",
            "incremental median (ms)",
            "incremental plan touched",
        ],
        [
            "target",
            f"≤ {COLD_TARGET_S:g} s",
            f"≤ {RSS_TARGET_MIB:g} MiB",
            f"≤ {INCREMENTAL_TARGET_MS:g} ms",
            "cells running the service, 1 change each",
        ],
    ]
    for r in results:
        rows.append(
            [
                r.size.label,
                f"{r.cold_seconds:.2f}  {mark(r.cold_seconds, COLD_TARGET_S)}",
                f"{r.cold_rss:.0f}  {mark(r.cold_rss, RSS_TARGET_MIB)}",
                f"{r.incremental_ms:.1f}  {mark(r.incremental_ms, INCREMENTAL_TARGET_MS)}",
                touched(r.incremental),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([lines[0], rule, lines[1], rule, *lines[2:]])


def details(result: Result) -> str:
    cold = result.cold
    lines = [
        f"{result.size.label}:",
        f"  cold runs (s): {', '.join(f'{r.seconds:.2f}' for r in cold)}; medians: import"
        f" cellops {statistics.median(r.import_seconds for r in cold):.2f} s, garbage"
        f" collector {statistics.median(r.gc_seconds for r in cold):.2f} s, whole child process"
        f" with interpreter start {statistics.median(r.process_seconds for r in cold):.2f} s",
        f"  cold plan: {cold[0].cells} cells, {cold[0].changes} changes",
    ]
    for r in result.incremental:
        lines.append(
            f"  incremental {r.service}: {r.seconds * 1000:.1f} ms (garbage collector"
            f" {r.gc_seconds * 1000:.1f} ms); {r.cells} cells, {r.changes} changes; expected"
            f" {r.expected_cells} cells {'ok' if r.ok else 'WRONG'}"
        )
    return "\n".join(lines)


def machine() -> str:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 0
    return (
        f"machine: nproc={cpus}, {platform.python_implementation()} {platform.python_version()},"
        f" {platform.system()} {platform.machine()}"
    )


# --------------------------------------------------------------------------- main


def bench_size(size: Size, repeat: int, timeout: float, profile_top: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="cellops-bench-", ignore_cleanup_errors=True) as tmp:
        repo = Path(tmp) / "fleet"
        started = time.perf_counter()
        head = create_fleet_repo(repo, size)
        compiler = validate(repo, head)
        print(
            f"{size.label}: fleet repo written and validated in"
            f" {time.perf_counter() - started:.1f} s; measuring...",
            file=sys.stderr,
        )
        cold = [run_cold(repo, head, timeout) for _ in range(repeat)]
        for run in cold:
            if (run.cells, run.changes) != (cold[0].cells, cold[0].changes):
                raise BenchError("cold runs disagree about the plan")
        incremental, last = run_incremental(compiler, repo, head, size, repeat)
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
    parser.add_argument("--cold-child", nargs=2, metavar=("REPO", "REV"), help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
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
            results.append(bench_size(size, args.repeat, args.timeout, args.profile))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print()
    print(machine())
    print(f"median of {args.repeat} runs per measure; cold = fresh process, incremental = warm")
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
