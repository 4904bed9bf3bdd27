"""`maxExposure` on a wave: its batches never hold more than the cap of the tenants; the
spec reads it as a percentage and refuses anything else at its line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellops.diff import ChangeSet
from cellops.model.errors import RevisionRejected
from cellops.plan import plan
from cellops.plan.planner import REMAINDER
from cellops.source.git import GitSource
from cellops.spec.cell import CellState
from cellops.spec.fleet import RolloutPolicy, WaveSpec
from cellops.spec.loader import load_revision
from cellops.tenancy.exposure import cap_verdict
from tests.fleetrepo import FleetRepo
from tests.unit.test_plan import _cells, change_sets, policies


@st.composite
def capped(draw: st.DrawFn) -> tuple[ChangeSet, RolloutPolicy, dict[str, float]]:
    changes = draw(change_sets())
    policy = draw(policies())
    waves = [
        w.model_copy(update={"max_exposure": draw(st.none() | st.floats(0.01, 1.0))})
        for w in policy.waves
    ]
    weights = {c.cell: draw(st.integers(0, 20)) for c in changes.cells}
    total = sum(weights.values()) or 1
    shares = {c: w / total for c, w in weights.items()}
    return changes, policy.model_copy(update={"waves": waves}), shares


@settings(max_examples=60, deadline=None)
@given(capped())
def test_no_batch_holds_more_than_its_waves_cap(
    case: tuple[ChangeSet, RolloutPolicy, dict[str, float]],
) -> None:
    changes, policy, shares = case
    result = plan(changes, policy, shares)
    caps = {w.name: w.max_exposure for w in policy.waves}
    caps[REMAINDER] = policy.waves[-1].max_exposure
    limits = {w.name: w.max_concurrent for w in policy.waves}
    limits[REMAINDER] = policy.waves[-1].max_concurrent
    for wave in result.waves:
        cap, held = caps[wave.name], sum(shares[c.cell] for c in wave.cells)
        assert cap is None or held <= cap + 1e-9 or len(wave.cells) == 1
        assert limits[wave.name] is None or len(wave.cells) <= limits[wave.name]  # type: ignore[operator]
    planned = [c.cell for w in result.waves for c in w.cells]
    frozen = (CellState.QUARANTINED, CellState.RETIRED)
    assert sorted(planned) == sorted(
        c.cell for c in changes.cells if c.changes and c.state not in frozen
    )


def test_a_capped_wave_goes_in_batches_that_keep_within_it() -> None:
    changes = _cells(*((f"c{i}", "eu", CellState.ACTIVE) for i in range(5)))
    policy = RolloutPolicy(waves=[WaveSpec(name="all", percent=100, maxExposure="25%")])
    shares = {"c0": 0.1, "c1": 0.1, "c2": 0.3, "c3": 0.2, "c4": 0.3}
    result = plan(changes, policy, shares)
    assert [[c.cell for c in w.cells] for w in result.waves] == [
        ["c0", "c1"],
        ["c2"],  # over the cap alone: its own batch, which the controller refuses
        ["c3"],
        ["c4"],
    ]
    assert cap_verdict(shares, ["c2"], [], 0.25).impossible  # type: ignore[union-attr]
    assert cap_verdict(shares, ["c3"], [], 0.25) is None
    waiting = cap_verdict(shares, ["c3"], ["c0"], 0.25)
    assert waiting is not None and not waiting.impossible and "c0" in waiting.message


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("10", "write the share as a percentage, such as 10%"),
        ("0.1", "write the share as a percentage"),
        ("ten%", "is not a percentage: expected one such as 10%"),
        ("150%", "expected 0% to 100%"),
    ],
)
def test_max_exposure_is_a_percentage_refused_at_its_line(
    fleet: FleetRepo, value: str, words: str
) -> None:
    fleet.replace(
        "cellops.yaml", "        bake: 1s\n", f"        bake: 1s\n        maxExposure: {value}\n"
    )
    with pytest.raises(RevisionRejected) as caught:
        load_revision(GitSource(fleet.path).snapshot(fleet.commit("cap")))
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == ("cellops.yaml", 11)
    assert problem.field == "spec.rollout.waves[0].maxExposure"
    assert words in problem.message


def test_max_exposure_reads_as_a_share(fleet: FleetRepo) -> None:
    fleet.replace(
        "cellops.yaml", "        bake: 1s\n", "        bake: 1s\n        maxExposure: 12.5%\n"
    )
    revision = load_revision(GitSource(fleet.path).snapshot(fleet.commit("cap")))
    assert revision.fleet.spec.rollout.waves[0].max_exposure == 0.125
