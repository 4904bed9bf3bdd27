"""Plan invariants, checked with hypothesis over random change sets and rollout policies."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cellops.diff import Action, CellChanges, Change, ChangeSet
from cellops.plan import Plan, plan
from cellops.plan.planner import REMAINDER
from cellops.spec.cell import CellState
from cellops.spec.fleet import RolloutPolicy, WaveSpec
from tests.examples import examples

FROZEN = (CellState.QUARANTINED, CellState.RETIRED)

SERVICES = [f"s{i}" for i in range(6)]
LABELS = {"region": ["eu", "us", "ap"], "ring": ["canary", "main"]}


@st.composite
def dependency_graphs(draw: st.DrawFn) -> dict[str, tuple[str, ...]]:
    """A random DAG (edges only to lower-numbered services), closed transitively."""
    direct = {s: {d for d in SERVICES[:i] if draw(st.booleans())} for i, s in enumerate(SERVICES)}
    closure: dict[str, set[str]] = {}
    for service in SERVICES:  # lower-numbered services are closed first
        closure[service] = set(direct[service])
        for dep in direct[service]:
            closure[service] |= closure[dep]
    return {s: tuple(sorted(d)) for s, d in closure.items()}


@st.composite
def change_sets(draw: st.DrawFn) -> ChangeSet:
    graph = draw(dependency_graphs())
    count = draw(st.integers(min_value=0, max_value=25))
    cells = []
    for i in range(count):
        name = f"cell-{i:02d}"
        labels = {k: draw(st.sampled_from(v)) for k, v in LABELS.items()}
        state = draw(st.sampled_from(list(CellState)))
        touched = draw(st.lists(st.sampled_from(SERVICES), unique=True, max_size=4))
        changes = tuple(
            Change(
                name,
                s,
                draw(st.sampled_from([Action.CREATED, Action.CONFIGURED, Action.DELETED])),
                "a",
                "b",
                graph[s],
            )
            for s in sorted(touched)
        )
        cells.append(CellChanges(name, labels, state, changes))
    return ChangeSet("rev", tuple(cells))


@st.composite
def policies(draw: st.DrawFn) -> RolloutPolicy:
    waves = []
    for i in range(draw(st.integers(min_value=1, max_value=4))):
        by_selector = draw(st.booleans())
        selector = {k: draw(st.sampled_from(v)) for k, v in LABELS.items() if draw(st.booleans())}
        waves.append(
            WaveSpec(
                name=f"w{i}",
                selector=selector if by_selector else None,
                percent=None if by_selector else draw(st.integers(min_value=1, max_value=100)),
                max_concurrent=draw(st.none() | st.integers(min_value=1, max_value=4)),
            )
        )
    return RolloutPolicy(waves=waves, canary_fallback=draw(st.booleans()))


def _planned(result: Plan) -> list[str]:
    return [c.cell for w in result.waves for c in w.cells]


@settings(max_examples=examples(300), deadline=None)
@given(change_sets(), policies())
def test_every_affected_cell_is_planned_exactly_once(
    changes: ChangeSet, policy: RolloutPolicy
) -> None:
    result = plan(changes, policy)
    planned = _planned(result)
    expected = {c.cell for c in changes.cells if c.changes and c.state not in FROZEN}
    assert len(planned) == len(set(planned))
    assert set(planned) == expected
    assert {s.cell for s in result.skipped} == {
        c.cell for c in changes.cells if c.changes and c.state in FROZEN
    }


@settings(max_examples=examples(300), deadline=None)
@given(change_sets(), policies())
def test_canary_first_and_concurrency_capped(changes: ChangeSet, policy: RolloutPolicy) -> None:
    result = plan(changes, policy)
    caps = {w.name: w.max_concurrent for w in policy.waves}
    caps[REMAINDER] = policy.waves[-1].max_concurrent
    for position, wave in enumerate(result.waves):
        assert wave.index == position
        assert wave.canary == (position == 0)
        cap = caps[wave.name]
        assert cap is None or len(wave.cells) <= cap
    if not result.waves:
        return
    first = policy.waves[0]
    first_pick = [
        c
        for c in changes.affected
        if c.state not in FROZEN
        and first.selector is not None
        and all(c.labels.get(k) == v for k, v in first.selector.items())
    ]
    if first.selector is not None and not first_pick and policy.canary_fallback:
        # the fallback canary: one cell alone, under the first wave's name
        assert result.waves[0].name == first.name
        assert len(result.waves[0].cells) == 1


@settings(max_examples=examples(200), deadline=None)
@given(change_sets(), policies())
def test_plans_are_deterministic(changes: ChangeSet, policy: RolloutPolicy) -> None:
    assert plan(changes, policy) == plan(changes, policy)


@settings(max_examples=examples(300), deadline=None)
@given(change_sets(), policies())
def test_dependency_order_inside_each_cell(changes: ChangeSet, policy: RolloutPolicy) -> None:
    given_changes = {c.cell: sorted(c.changes, key=lambda x: x.service) for c in changes.cells}
    for wave in plan(changes, policy).waves:
        for cell in wave.cells:
            assert sorted(cell.changes, key=lambda x: x.service) == given_changes[cell.cell]
            position = {ch.service: i for i, ch in enumerate(cell.changes)}
            deletes_started = False
            for ch in cell.changes:
                deletes_started |= ch.action is Action.DELETED
                assert deletes_started == (ch.action is Action.DELETED), "deletes come last"
                for dep in ch.depends_on:
                    other = next((o for o in cell.changes if o.service == dep), None)
                    if other is None or (other.action is Action.DELETED) != (
                        ch.action is Action.DELETED
                    ):
                        continue
                    if ch.action is Action.DELETED:
                        assert position[ch.service] < position[dep], "dependants deleted first"
                    else:
                        assert position[dep] < position[ch.service], "dependencies applied first"


def _cells(*specs: tuple[str, str, CellState]) -> ChangeSet:
    return ChangeSet(
        "rev",
        tuple(
            CellChanges(
                name,
                {"region": region, "ring": "main"},
                state,
                (Change(name, "svc", Action.CONFIGURED, "a", "b"),),
            )
            for name, region, state in specs
        ),
    )


def test_canary_fallback_takes_one_cell_when_the_canary_selector_matches_none() -> None:
    changes = _cells(("a", "eu", CellState.ACTIVE), ("b", "eu", CellState.ACTIVE))
    policy = RolloutPolicy(
        waves=[
            WaveSpec(name="canary", selector={"ring": "canary"}),
            WaveSpec(name="all", percent=100),
        ]
    )
    result = plan(changes, policy)
    assert [(w.name, [c.cell for c in w.cells]) for w in result.waves] == [
        ("canary", ["a"]),
        ("all", ["b"]),
    ]
    no_fallback = plan(changes, policy.model_copy(update={"canary_fallback": False}))
    assert [(w.name, len(w.cells)) for w in no_fallback.waves] == [("all", 2)]


def test_percent_rounds_up_and_leftovers_form_a_remainder_wave() -> None:
    changes = _cells(*((f"c{i}", "eu" if i < 3 else "us", CellState.ACTIVE) for i in range(5)))
    policy = RolloutPolicy(
        waves=[
            WaveSpec(name="first", percent=30),  # ceil(5 * 0.3) = 2
            WaveSpec(name="eu", selector={"region": "eu"}, max_concurrent=1, bake=5),
        ]
    )
    result = plan(changes, policy)
    assert [(w.name, w.batch, w.batches, [c.cell for c in w.cells]) for w in result.waves] == [
        ("first", 1, 1, ["c0", "c1"]),
        ("eu", 1, 1, ["c2"]),
        (REMAINDER, 1, 2, ["c3"]),
        (REMAINDER, 2, 2, ["c4"]),
    ]
    assert result.waves[-1].bake == 5


def test_quarantined_and_retired_cells_are_skipped_not_planned() -> None:
    changes = _cells(
        ("a", "eu", CellState.QUARANTINED),
        ("b", "eu", CellState.DRAINING),
        ("c", "eu", CellState.RETIRED),
    )
    result = plan(changes, RolloutPolicy())
    assert result.cells == ["b"]
    assert [(s.cell, s.reason) for s in result.skipped] == [
        ("a", "quarantined"),
        ("c", "retired"),
    ]
