"""DORA figures: the rules of `cellops.dora.figures` on hand-made facts, properties over
generated ones, and the facts gathered from a real store (`cellops.observe.dora`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cellops.dora.facts import CellFailure, RolloutFacts, restrict
from cellops.dora.figures import DAY, Window, figures, report
from cellops.dora.stats import percentile
from cellops.observe.dora import dora_report
from cellops.store.planrecord import PlannedCellRecord, PlanRecord, PolicyRecord, WaveRecord
from cellops.store.records import CellStep, RevisionRecord, RolloutState
from cellops.store.sqlite import SqliteStore
from tests.examples import examples

T0 = 1_700_000_000.0
WINDOW = Window(T0, T0 + 10 * DAY)
CELLS = {"eu-1": ("api", "web"), "eu-2": ("api",), "us-1": ("web",)}


def rollout(n: int, **changes: object) -> RolloutFacts:
    base = RolloutFacts(
        id=n,
        revision=f"r{n}",
        committed_at=T0 + n * 1000,
        started_at=T0 + n * 1000 + 10,
        state="completed",
        ended_at=T0 + n * 1000 + 500,
        cells=CELLS,
        healthy_at={c: T0 + n * 1000 + 100 + i for i, c in enumerate(CELLS)},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_completed_rollout_is_a_deployment_with_its_lead_time() -> None:
    out = figures([rollout(1)], [], WINDOW)
    assert out["deployments"] == 1
    assert out["deployment_frequency_per_day"] == 0.1
    # commit at +1000, the last planned cell healthy at +1102
    assert out["lead_time_seconds"] == {"count": 1, "p50": 102.0, "p90": 102.0, "mean": 102.0}
    assert out["change_failure_rate"] == 0.0


def test_halted_and_rolled_back_rollouts_are_change_failures() -> None:
    halted = rollout(2, state="halted", halted=True, failed=frozenset({"eu-1"}))
    rolled_back = rollout(3, failed=frozenset({"us-1"}))  # completed within its budget
    superseded = rollout(4, state="superseded", healthy_at={})
    running = rollout(5, state="running", ended_at=None)
    out = figures([rollout(1), halted, rolled_back, superseded, running], [], WINDOW)
    assert out["rollouts"] == 4  # the running one has not ended
    assert out["change_failures"] == 2
    assert out["change_failure_rate"] == 0.5
    assert out["deployments"] == 2  # 1 and 3 (which still reached eu-1 and eu-2)


def test_lead_time_does_not_wait_for_a_failed_cell() -> None:
    facts = rollout(
        1, failed=frozenset({"us-1"}), healthy_at={"eu-1": T0 + 1100, "eu-2": T0 + 1300}
    )
    assert facts.lead_time == 300.0


def test_time_to_restore_counts_restored_failures_and_open_ones_apart() -> None:
    failures = [
        CellFailure(2, "eu-1", ("api",), T0 + 2050, T0 + 2110),
        CellFailure(2, "eu-2", ("api",), T0 + 2060, None),
    ]
    out = figures([], failures, WINDOW)
    assert out["failures"] == 2 and out["unrestored"] == 1
    assert out["time_to_restore_seconds"]["p50"] == 60.0  # type: ignore[index]


def test_outside_the_window_is_not_counted() -> None:
    late = rollout(1, ended_at=WINDOW.until + 1)
    early = CellFailure(1, "eu-1", (), WINDOW.since - 1, WINDOW.since + 5)
    out = figures([late], [early], WINDOW)
    assert out["rollouts"] == 0 and out["failures"] == 0


def test_per_service_and_cell_scopes() -> None:
    halted = rollout(2, state="halted", halted=True, failed=frozenset({"us-1"}))
    out = report([rollout(1), halted], [CellFailure(2, "us-1", ("web",), T0 + 2050, None)], WINDOW)
    services, cells = out["services"], out["cells"]
    assert isinstance(services, dict) and isinstance(cells, dict)
    assert services["web"]["change_failures"] == 1  # us-1 runs web
    assert services["api"]["change_failures"] == 0  # the halt was us-1's, not api's
    assert cells["eu-2"]["deployments"] == 1 and cells["us-1"]["failures"] == 1
    assert cells["us-1"]["lead_time_seconds"]["count"] == 1  # rollout 1 only


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 11)], 90) == 9.0
    assert percentile([5.0], 90) == 5.0


# -- properties ------------------------------------------------------------------------
names = st.sampled_from(sorted(CELLS))


@st.composite
def facts(draw: st.DrawFn) -> RolloutFacts:
    n = draw(st.integers(1, 500))
    state = draw(st.sampled_from(["completed", "halted", "superseded", "aborted", "running"]))
    healthy = {c: T0 + n * 100 + draw(st.floats(0, 5000)) for c in draw(st.sets(names))}
    return rollout(
        n,
        committed_at=T0 + n * 100 - draw(st.floats(0, 3600)),
        state=state,
        ended_at=None if state == "running" else T0 + n * 100 + 6000,
        healthy_at=healthy,
        failed=frozenset(draw(st.sets(names))),
        halted=state == "halted",
    )


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(facts(), max_size=12))
def test_properties_of_the_figures(rollouts: list[RolloutFacts]) -> None:
    out = report(rollouts, [], WINDOW)
    fleet = out["fleet"]
    assert isinstance(fleet, dict)
    rate = fleet["change_failure_rate"]
    assert rate is None or 0.0 <= rate <= 1.0
    assert fleet["change_failures"] <= fleet["rollouts"]
    assert fleet["deployments"] <= fleet["rollouts"]
    lead = fleet["lead_time_seconds"]
    assert lead["p50"] is None or 0.0 <= lead["p50"] <= lead["p90"]
    for scopes in (out["services"], out["cells"]):
        assert isinstance(scopes, dict)
        for figures_ in scopes.values():  # a narrower scope never has more than the fleet
            assert figures_["rollouts"] <= fleet["rollouts"]
            assert figures_["deployments"] <= fleet["deployments"]
            assert figures_["change_failures"] <= fleet["change_failures"]


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(facts(), max_size=8), st.floats(-1e6, 1e6))
def test_figures_do_not_depend_on_when_it_happened(
    rollouts: list[RolloutFacts], shift: float
) -> None:
    def moved(r: RolloutFacts) -> RolloutFacts:
        return replace(
            r,
            committed_at=r.committed_at + shift,
            started_at=r.started_at + shift,
            ended_at=None if r.ended_at is None else r.ended_at + shift,
            healthy_at={c: t + shift for c, t in r.healthy_at.items()},
        )

    later = Window(WINDOW.since + shift, WINDOW.until + shift)
    first, second = report(rollouts, [], WINDOW), report([moved(r) for r in rollouts], [], later)
    first.pop("window"), second.pop("window")
    assert _rounded(first) == _rounded(second)


@given(facts())
def test_restricting_to_every_cell_changes_nothing(r: RolloutFacts) -> None:
    assert restrict(r, set(r.cells)) == r
    assert restrict(r, set()) is None


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


# -- from a real store -------------------------------------------------------------------
def _plan() -> PlanRecord:
    cells = tuple(PlannedCellRecord(c, tuple((s, "configured") for s in CELLS[c])) for c in CELLS)
    wave = WaveRecord(name="all", batch=1, batches=1, canary=False, bake_seconds=0, cells=cells)
    return PlanRecord((wave,), PolicyRecord())


def test_dora_report_from_the_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cellops.db")
    try:
        good = store.create_rollout("a" * 40, None, _plan(), T0 + 100)
        store.record_revision(RevisionRecord("a" * 40, True, "good", [], T0 + 90, T0))
        for i, cell in enumerate(CELLS):
            store.add_event(T0 + 200 + i, "healthy", f"{cell} healthy", cell=cell, rollout=good)
            store.set_cell_step(good, cell, CellStep.GOOD, "", T0 + 300)
        store.update_rollout(good, T0 + 300, state=RolloutState.COMPLETED)
        bad = store.create_rollout("b" * 40, "a" * 40, _plan(), T0 + 1000)
        store.record_revision(RevisionRecord("b" * 40, True, "bad", [], T0 + 990, None))
        store.add_event(T0 + 1100, "cell-failed", "eu-1: crash", cell="eu-1", rollout=bad)
        store.add_event(T0 + 1160, "recovered", "eu-1 healthy again", cell="eu-1", rollout=bad)
        store.set_cell_step(bad, "eu-1", CellStep.RECOVERED, "", T0 + 1160)
        store.update_rollout(bad, T0 + 1170, state=RolloutState.HALTED)
        out = dora_report(store, T0, T0 + DAY)
    finally:
        store.close()
    fleet = out["fleet"]
    assert isinstance(fleet, dict)
    assert fleet["deployments"] == 1 and fleet["rollouts"] == 2
    assert fleet["lead_time_seconds"]["p50"] == 202.0  # commit time T0 -> us-1 healthy
    assert fleet["change_failure_rate"] == 0.5
    assert fleet["time_to_restore_seconds"]["p50"] == 60.0
    assert out["window"] == {
        "from": "2023-11-14T22:13:20Z",
        "to": "2023-11-15T22:13:20Z",
        "days": 1.0,
    }
