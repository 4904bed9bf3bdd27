"""Fault benchmark: the controller killed with SIGKILL at exact points and random moments of
real rollouts, then restarted; every promise of the rollout checked after each kill.

A live fleet (tests/integration/controller_harness.py): a real `cellops up` process, four
local cells (a canary, then three cells in batches of two), real cell agents and replica
processes; `web` (no readiness probe) and `api` (an HTTP readiness probe). Scenarios:

- good: a good release of `web`, killed at a fail point (`CELLOPS_FAILPOINT`: after a
  store commit, or after a cell's desired state is written) spread over the whole run;
- bad: `api` crashes at start; the canary fails, is rolled back, the rollout halts; killed
  at a fail point from the failure on (rollback, halt, recovery);
- batch: `api` crashes in every cell but the canary: both cells of a batch fail and must
  both be rolled back; killed from the first failure on;
- noprobe: the same with `web`, which has no readiness probe (running counts as ready);
- random: good and bad releases in turn, killed once or twice at a random moment.

Each scenario first runs once without a kill (its calibration: the fail points it passes,
how long it takes), checked like a trial. After a kill a clean controller starts; once it
has settled (or after 45 s): no wave skipped or applied twice, every failing cell rolled
back, no cell emptied, the ledger what the agents run, exactly the declared replica
processes, one agent per cell (faults_checks.py).

Run: .venv/bin/python bench/faults.py [--trials 100] [--quick] [--only bad,batch] [--seed 1]
Prints each trial, a table and every violation; exits 1 on any.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

from tests.integration.controller_harness import Fleet, ServiceDef  # noqa: E402

from cellops.store.records import RolloutState  # noqa: E402
from faults_trials import Calibration, Outcome, Scenario, Trials, median  # noqa: E402

HALTED, COMPLETED = RolloutState.HALTED, RolloutState.COMPLETED
POINTED = ("good", "bad", "batch", "noprobe")  # killed at fail points
SHARES = {"good": 0.3, "bad": 0.25, "batch": 0.15, "noprobe": 0.1, "random": 0.2}
QUICK = {"good": 1, "bad": 1, "batch": 1, "noprobe": 0, "random": 1}


def scenarios(fleet: Fleet) -> dict[str, Scenario]:
    others = tuple(c for c in fleet.cells if c != f"{fleet.prefix}-canary")
    return {
        "good": Scenario("good", "web", False, COMPLETED),
        "bad": Scenario("bad", "api", True, HALTED, after="cell-failed"),
        "batch": Scenario("batch", "api", others, HALTED, after="cell-failed"),
        "noprobe": Scenario("noprobe", "web", others, HALTED, after="cell-failed"),
    }


def run(fleet: Fleet, work: Path, counts: dict[str, int], seed: int) -> list[Outcome]:
    trials = Trials(fleet, work, seed)
    kinds = scenarios(fleet)
    calibrations: dict[str, Calibration] = {}
    outcomes: list[Outcome] = []
    for name in POINTED:
        if counts[name] or (name in ("good", "bad") and counts["random"]):
            calibration, outcome = trials.calibrate(kinds[name])
            calibrations[name] = calibration
            report(outcome, f"{len(calibration.points)} fail points, {calibration.seconds:.1f}s")
            outcomes.append(outcome)
    for name in POINTED:
        for index in range(counts[name]):
            point = calibrations[name].target(index, counts[name], trials.rng)
            outcomes.append(report(trials.at_point(kinds[name], point)))
    for index in range(counts["random"]):
        which = kinds["bad" if index % 2 else "good"]
        window = calibrations[which.name].seconds
        random_kind = Scenario("random", which.service, which.crash, which.state)
        outcomes.append(report(trials.at_random(random_kind, window)))
    return outcomes


def report(outcome: Outcome, extra: str = "") -> Outcome:
    kills = "; ".join(f"{point} @ {where}" for point, where in outcome.kills) or "no kill"
    took = f"{outcome.recovery:.1f}s" if outcome.recovery is not None else "-"
    verdict = "ok" if not outcome.violations else f"{len(outcome.violations)} VIOLATION(S)"
    print(f"  {outcome.scenario:<7} {kills:<60} {outcome.note} {extra} settled {took} {verdict}")
    for line in outcome.violations:
        print(f"      - {line}")
    sys.stdout.flush()
    return outcome


def table(outcomes: list[Outcome], elapsed: float) -> int:
    """The summary; returns the number of violations."""
    print(
        f"\n{'scenario':<10}{'trials':>7}{'kills':>7}{'clean runs':>12}{'violations':>12}"
        "   recovery median (max)"
    )
    for name in (*POINTED, "random", "down"):
        group = [o for o in outcomes if o.scenario == name]
        if not group:
            continue
        trials = [o for o in group if not o.calibration]
        times = [o.recovery for o in trials if o.recovery is not None and o.kills]
        found = sum(len(o.violations) for o in group)
        middle = median(times)
        spread = f"{middle:.1f} s ({max(times):.1f} s)" if middle is not None else "-"
        kills = sum(len(o.kills) for o in group)
        clean = len(group) - len(trials)
        print(f"{name:<10}{len(trials):>7}{kills:>7}{clean:>12}{found:>12}   {spread}")
    moments = collections.Counter(where for o in outcomes for _, where in o.kills)
    points = collections.Counter(p for o in outcomes for p, _ in o.kills if "after" not in p)
    print("\nkilled at:", ", ".join(f"{k} {n}" for k, n in points.most_common()))
    print("the rollout was:", ", ".join(f"{k} {n}" for k, n in sorted(moments.items())))
    bad = sum(len(o.violations) for o in outcomes)
    kills = sum(len(o.kills) for o in outcomes)
    trials = sum(not o.calibration for o in outcomes)
    print(f"\n{trials} trials, {kills} kills, {bad} violations, {elapsed:.0f} s in all")
    for outcome in outcomes:
        for line in outcome.violations:
            print(f"VIOLATION {outcome.scenario} ({outcome.note}): {line}")
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="kill trials (default 100)")
    parser.add_argument("--quick", action="store_true", help="one trial per scenario")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--only", default="", help="comma-separated scenarios (good,bad,batch,noprobe,random)"
    )
    args = parser.parse_args()
    counts = dict(QUICK)
    if not args.quick:
        counts = {k: round(share * args.trials) for k, share in SHARES.items()}
        counts["good"] += args.trials - sum(counts.values())
    if args.only:
        chosen = args.only.split(",")
        if unknown := set(chosen) - set(SHARES):
            parser.error(
                f"--only: unknown scenario(s) {sorted(unknown)}; choose from {list(SHARES)}"
            )
        counts = {k: (n or 1) if k in chosen else 0 for k, n in counts.items()}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cellops-faults-") as tmp:
        fleet = Fleet(
            Path(tmp),
            f"fb{int(time.time() * 1000) % 100000}",
            [ServiceDef("web", 18280), ServiceDef("api", 18281, probes=True)],
            max_concurrent=2,
        )
        leftovers: dict[int, str] = {}
        try:
            print(f"fleet {fleet.prefix}: {len(fleet.cells)} cells, trials {counts}")
            fleet.start()
            fleet.wait_rollout(fleet.head, COMPLETED, timeout=90)
            outcomes = run(fleet, Path(tmp), counts, args.seed)
        finally:
            leftovers = fleet.down()
    if leftovers:
        outcomes.append(Outcome("down", violations=[f"outlived cellops down: {leftovers}"]))
    bad = table(outcomes, time.monotonic() - started)
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
