"""Router benchmark: placement, lookups, and requests side by side in one run.

- placement of N tenants over M cells (`cellops.tenancy.placement.place`), target <= 2 s
  for 1,000,000 over 1,000; lookups in process (`RoutingTable.lookup`), target >= 1,000,000/s;
- one toy cell reached four ways: direct, HAProxy without a map (one backend), HAProxy with
  the map (every tenant listed), the embedded router (`cellops router run`): p50/p99 at a
  fixed rate, the targets taking turns of a second (after 3 s of settling, each turn after
  0.5 s of warm-up, see `turns`; target: the router adds <= 2 ms
  p99 at 1,000 requests/s; "turn p99", the median of the turns' p99s, is that without the
  odd stall of another process on a shared machine) and the rate a closed
  loop sustains, and that rate per second of the target's own CPU time ("per core": the
  target's capacity on one core of its own; targets: the router >= 5,000/s on one core;
  HAProxy with the map within 10% of HAProxy without);
- moves under load: the embedded router's table rewritten N times while requests flow,
  target 0 failed requests;
- bulkhead: two cells, one hung (SIGSTOP) while its tenants knock at 50/s: the other's
  p99 before and during (target within 20%), its failures (target 0).

The load generator is a lean Python client (bench/router_load.py) in this process, its
garbage collector paused while it measures; on a small machine it, not the target, may be
the limit: the direct row shows its ceiling. The toy cell is nginx when installed.
Run: .venv/bin/python bench/router.py [--quick] [--seconds 10]
--quick (`make test`): small sizes, short loads; exit 1 when a request fails or a tenant is
routed to the wrong cell, never for a missed speed target. Processes are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from cellops.router.tablefile import write_table
from cellops.tenancy.placement import CellSlot, TenantEntry, place
from cellops.tenancy.table import CellRoute, RoutingTable
from router_load import (
    Client,
    Load,
    closed_loop,
    cold_memory,
    collector_paused,
    fixed_rate,
)
from router_procs import cpu_seconds, start_haproxy, start_router, toy_cell

TURN = 1.0  # seconds of a target's fixed-rate load that are measured, before the next one
WARM = 0.5  # seconds of the same load before them, not measured (see `turns`)
SETTLE = 3.0  # a new process's first seconds at the rate, not measured (see `turns`)


def bench_placement(tenants: int, cells: int) -> tuple[float, float, float, float]:
    """Placement's seconds and lookups a second, each by the clock and by this process's
    CPU time (what one core of its own takes, whatever else runs on the machine)."""
    slots = [CellSlot(f"cell-{i}", max_tenants=2 * tenants // cells) for i in range(cells)]
    entries = [TenantEntry(f"tenant-{i}") for i in range(tenants)]
    start, cpu = time.perf_counter(), time.process_time()
    result = place(slots, entries)
    placed, placed_cpu = time.perf_counter() - start, time.process_time() - cpu
    if result.errors or len(result.assignment) != tenants:
        raise SystemExit(f"placement failed: {result.errors[:3]}")
    routes = {s.name: CellRoute("http://127.0.0.1:1") for s in slots}
    table = RoutingTable(1, "bench", routes, result.assignment, tuple(routes))
    lookup, keys = table.lookup, [e.id for e in entries]
    start, cpu = time.perf_counter(), time.process_time()
    for key in keys:
        lookup(key)
    rate = len(keys) / (time.perf_counter() - start)
    rate_cpu = len(keys) / (time.process_time() - cpu)
    return placed, placed_cpu, rate, rate_cpu


async def turns(
    urls: dict[str, str],
    tenants: list[str],
    rate: int,
    seconds: float,
    *,
    turn: float = TURN,
    warm: float = WARM,
    settle: float = SETTLE,
) -> tuple[dict[str, Load], dict[str, list[float]]]:
    """Each target's latency at a fixed rate, taken in turns (direct, HAProxy, router,
    direct, ...): whatever else the machine runs meanwhile falls on every target alike, so
    the difference between two rows is the targets', not the moment's. Also each turn's own
    p99 (ms), whose median one stall of another process cannot move.

    Each turn starts with `warm` seconds of the same load, not measured: the rate is a
    steady state, and on this machine a process left idle for a second (the other targets'
    turns) finds its memory cold again (re-touching 64 MiB: 7 ms at once, 217 ms after 1 s
    idle, 392 ms after 5 s; see docs/performance.md), which costs a Python process's first
    requests far more than HAProxy's and is no part of serving 1,000 requests a second.
    For the same reason every target first has `settle` seconds of load: a process just
    started is still taking fresh memory from the machine (the router's p99 over its first
    2-second windows here: 13, 8, then 5 ms)."""
    loads = {name: Load() for name in urls}
    per_turn: dict[str, list[float]] = {name: [] for name in urls}
    targets = {name: Client(url) for name, url in urls.items()}
    for name, url in urls.items():
        settled = await fixed_rate(url, tenants, rate, settle, target=targets[name])
        loads[name].failures += settled.failures
    for _ in range(max(1, round(seconds / turn))):
        for name, url in urls.items():
            load = loads[name]
            warmed = await fixed_rate(url, tenants, rate, warm, target=targets[name])
            load.failures += warmed.failures  # not measured, but a failure all the same
            before = len(load.latencies)
            await fixed_rate(url, tenants, rate, turn, target=targets[name], load=load)
            per_turn[name].append(Load(load.latencies[before:]).p(99))
    for target in targets.values():
        target.close()
    return loads, per_turn


def measure(
    targets: dict[str, tuple[int, int]], tenants: list[str], seconds: float, rounds: int = 5
) -> dict[str, tuple[Load, float]]:
    """Each target's rate in a closed loop, and that rate per second of its own CPU time
    (what one core of its own would sustain, whatever else shares the machine: the load
    generator, the cell, other sessions). The targets take turns (`rounds` of them, each
    `seconds / rounds` long), so that a slow spell of the machine falls on all alike."""
    loads = {name: Load() for name in targets}
    cpu = dict.fromkeys(targets, 0.0)
    for _ in range(max(1, rounds)):
        for name, (port, pid) in targets.items():
            before = cpu_seconds(pid)
            url = f"http://127.0.0.1:{port}/x"
            done = asyncio.run(closed_loop(url, tenants, 32, seconds / max(1, rounds)))
            cpu[name] += cpu_seconds(pid) - before
            load = loads[name]
            load.latencies += done.latencies
            load.failures += done.failures
            load.seconds += done.seconds
    return {
        name: (load, len(load.latencies) / cpu[name] if cpu[name] else float("nan"))
        for name, load in loads.items()
    }


async def _moves(url: str, table_path: Path, table: RoutingTable, moves: int) -> Load:
    tenants = list(table.tenants)
    cells = list(table.cells)
    load_task = asyncio.create_task(closed_loop(url, tenants, 8, 0.2 + moves * 0.05))
    for i in range(moves):
        tenant = tenants[i % len(tenants)]
        moved = dict(table.tenants)
        moved[tenant] = cells[(cells.index(moved[tenant]) + 1) % len(cells)]
        table = replace(table, version=table.version + 1, tenants=moved)
        write_table(table_path, table)
        await asyncio.sleep(0.05)
    return await load_task


def print_rows(rows: list[dict[str, object]], rate: int) -> None:
    print(
        f"\n{'target':<18}{'p50 ms':>8}{'p99 ms':>8}{'turn p99':>10}  (at {rate}/s)"
        f"{'sustained/s':>13}{'per core/s':>12}{'failed':>8}"
    )
    for row in rows:
        fixed, sustained = row["fixed"], row["sustained"]
        assert isinstance(fixed, Load) and isinstance(sustained, Load)
        print(
            f"{row['name']:<18}{fixed.p(50):>8.2f}{fixed.p(99):>8.2f}{row['turn_p99']:>10.2f}"
            f"{'':>13}{sustained.rate:>13.0f}{row['per_core']:>12.0f}{row['failed']:>8}"
        )
    print(
        f"(turn p99: the median of each {TURN * 1000:.0f} ms turn's p99: one stall cannot move it)"
    )
    by_name = {str(r["name"]): r for r in rows}
    if "haproxy + map" in by_name:
        bare, mapped = by_name["haproxy, no map"]["per_core"], by_name["haproxy + map"]["per_core"]
        assert isinstance(bare, float) and isinstance(mapped, float)
        print(f"HAProxy with the map: {mapped / bare - 1:+.1%} per core (target within 10%)")
    if "embedded router" in by_name:
        direct, routed = by_name["direct"], by_name["embedded router"]
        d, r = direct["fixed"], routed["fixed"]
        assert isinstance(d, Load) and isinstance(r, Load)
        added = float(routed["turn_p99"]) - float(direct["turn_p99"])  # type: ignore[arg-type]
        print(
            f"the embedded router adds {r.p(50) - d.p(50):+.2f} ms p50, {r.p(99) - d.p(99):+.2f}"
            f" ms p99, {added:+.2f} ms turn p99 at {rate}/s (target <= 2 ms p99)"
        )


def _knock(url: str, tenants: list[str], seconds: float) -> subprocess.Popen[str]:
    """Cell b's tenants at 50/s from another process (not this one's event loop), started
    and ready before the measurement: it knocks once sent "go", through the "before" window
    (b healthy) and the "during" one (b hung), so the two differ by the hang alone."""
    load = str(Path(__file__).with_name("router_load.py"))
    args = [sys.executable, load, url, str(seconds), "50", *tenants]
    knocker = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert knocker.stdout is not None and knocker.stdout.readline().strip() == "ready"
    return knocker


async def windows(
    url: str, tenants: list[str], rate: int, seconds: float, target: Client
) -> tuple[Load, list[float]]:
    """A fixed-rate load in windows of `TURN` seconds: all of it, and each window's p99."""
    load, p99s = Load(), []
    for _ in range(max(1, round(seconds / TURN))):
        before = len(load.latencies)
        await fixed_rate(url, tenants, rate, TURN, target=target, load=load)
        p99s.append(Load(load.latencies[before:]).p(99))
    return load, p99s


async def _hang(
    url: str,
    tenants: list[str],
    rate: int,
    seconds: float,
    *,
    cell: subprocess.Popen[str],
    knocking: subprocess.Popen[str],
    settle: float,
) -> tuple[tuple[Load, list[float]], tuple[Load, list[float]]]:
    """The healthy cell's tenants before and while `cell` is hung and knocked on; one client
    throughout, settled first (see `turns`)."""
    target = Client(url)
    settled = await fixed_rate(url, tenants, rate, settle, target=target)
    assert knocking.stdin is not None
    knocking.stdin.write("go\n")
    knocking.stdin.flush()
    before = await windows(url, tenants, rate, seconds, target)
    before[0].failures += settled.failures
    os.kill(cell.pid, signal.SIGSTOP)
    during = await windows(url, tenants, rate, seconds, target)
    target.close()
    return before, during


def bulkhead(tmp: Path, seconds: float, rate: int, settle: float) -> int:
    """One of two cells hung (SIGSTOP): the other's p99 before and during; its failures."""
    procs = [toy_cell(tmp / "cell-a"), toy_cell(tmp / "cell-b")]
    try:
        routes = {
            n: CellRoute(f"http://127.0.0.1:{p}") for n, (_, p) in zip("ab", procs, strict=True)
        }
        healthy, hung = [f"a-{i}" for i in range(100)], [f"b-{i}" for i in range(100)]
        tenants = {**dict.fromkeys(healthy, "a"), **dict.fromkeys(hung, "b")}
        path = tmp / "bulkhead.json"
        write_table(path, RoutingTable(1, "bench", routes, tenants, ("a",)))
        router, port = start_router(path, "--timeout", "2")
        procs.append((router, port))
        url = f"http://127.0.0.1:{port}/x"
        knocking = _knock(url, hung, 2 * max(1, round(seconds / TURN)) * TURN)
        hang = _hang(
            url, healthy, rate, seconds, cell=procs[1][0], knocking=knocking, settle=settle
        )
        with collector_paused():
            (before, before_p99s), (during, during_p99s) = asyncio.run(hang)
        calm, hung_p99 = statistics.median(before_p99s), statistics.median(during_p99s)
        refused, answered = map(int, knocking.communicate(timeout=120)[0].split())
        os.kill(procs[1][0].pid, signal.SIGCONT)
        print(
            f"\nbulkhead, cell b hung (SIGSTOP): cell a's p99 {before.p(99):.2f} ms before,"
            f" {during.p(99):.2f} ms during; its {TURN:.0f} s windows' median p99"
            f" {calm:.2f} ms before, {hung_p99:.2f} ms during ({hung_p99 / calm - 1:+.0%};"
            f" target within 20%); a's failures"
            f" {before.failures + during.failures} (target 0); b's tenants: {answered} answered"
            f" before the hang, {refused} refused during it"
        )
        return before.failures + during.failures
    finally:
        for proc, _ in procs:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            proc.wait(timeout=20)


def run_targets(tmp: Path, seconds: float, rate: int, moves: int, settle: float) -> int:
    """The four targets under load, then the moves; the number of failed requests."""
    procs: list[subprocess.Popen[str]] = []
    try:
        cell, cell_port = toy_cell(tmp / "cell")
        procs.append(cell)
        tenants = [f"tenant-{i}" for i in range(1000)]
        url = f"http://127.0.0.1:{cell_port}"
        route = {"a": CellRoute(url), "b": CellRoute(url)}
        table = RoutingTable(1, "bench", route, dict.fromkeys(tenants, "a"), ("a",))
        table_path = tmp / "routing.json"
        write_table(table_path, table)
        targets = {"direct": (cell_port, cell.pid)}
        if shutil.which("haproxy"):
            bare = replace(table, tenants={})
            for name, which, folder in (
                ("haproxy, no map", bare, "bare"),
                ("haproxy + map", table, "map"),
            ):
                proc, port = start_haproxy(tmp / folder, which)
                procs.append(proc)
                targets[name] = (port, proc.pid)
        router, router_port = start_router(table_path)
        procs.append(router)
        targets["embedded router"] = (router_port, router.pid)
        urls = {name: f"http://127.0.0.1:{port}/x" for name, (port, _) in targets.items()}
        with collector_paused():
            fixed, per_turn = asyncio.run(turns(urls, tenants, rate, seconds, settle=settle))
        rates = measure(targets, tenants, seconds)
        rows: list[dict[str, object]] = [
            {
                "name": name,
                "fixed": fixed[name],
                "sustained": sustained,
                "per_core": per_core,
                "failed": fixed[name].failures + sustained.failures,
                "turn_p99": statistics.median(per_turn[name]),
            }
            for name, (sustained, per_core) in rates.items()
        ]
        print_rows(rows, rate)
        failed = sum(int(r["failed"]) for r in rows)  # type: ignore[call-overload]
        moved = asyncio.run(_moves(f"http://127.0.0.1:{router_port}/x", table_path, table, moves))
        print(
            f"\n{moves} moves under load (embedded router): {len(moved.latencies)} requests,"
            f" {moved.failures} failed (target 0)"
        )
        return failed + moved.failures
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=1000)
    args = parser.parse_args()
    tenants_n, cells_n = (20_000, 100) if args.quick else (1_000_000, 1_000)
    seconds, rate = (1.0, 200) if args.quick else (args.seconds, args.rate)
    placed, placed_cpu, lookups, lookups_cpu = bench_placement(tenants_n, cells_n)
    print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
    hot, cold = cold_memory()
    print(
        f"this machine: writing 64 MiB again takes {hot:.0f} ms at once,"
        f" {cold:.0f} ms after 1 s idle"
    )
    print(f"load generator: lean Python client (asyncio + httptools), {seconds:.0f} s each")
    print(
        f"placement: {tenants_n:,} tenants over {cells_n:,} cells in {placed:.2f} s"
        f" ({placed_cpu:.2f} s of CPU; target <= 2 s at 1,000,000 x 1,000)"
    )
    print(
        f"lookups: {lookups:,.0f}/s in process ({lookups_cpu:,.0f} per CPU-second;"
        " target >= 1,000,000/s)"
    )
    with tempfile.TemporaryDirectory(prefix="cellops-router-bench-") as tmp:
        settle = 0.3 if args.quick else SETTLE
        failed = run_targets(Path(tmp), seconds, rate, 10 if args.quick else 100, settle)
        failed += bulkhead(Path(tmp), seconds, rate, settle)
    if failed:
        print(f"FAIL: {failed} request(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
