"""Containment on real local cells: `cellops up` as a process, real agents and replicas.

A release that crashes in both cells of one batch (`maxConcurrent: 2`) is rolled back in
both, and the halted rollout is retried with `cellops rollout retry` once the cause is
gone, without a new commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellops.store.records import CellStep, RolloutState
from tests.integration.controller_harness import Fleet, ServiceDef, applied_order, wait_for

pytestmark = pytest.mark.slow

WEB = ServiceDef("web", 18095, probes=True)  # a crash at start is never ready


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    # a canary, then one batch of two cells; names of its own, so addresses of its own
    live = Fleet(
        tmp_path / "fleet",
        f"k{secrets.token_hex(3)}",
        [WEB],
        regions=("a", "b"),
        max_concurrent=2,
        progress_deadline="15s",
    )
    try:
        live.start()
        live.wait_rollout(live.head, RolloutState.COMPLETED, timeout=60)
        live.wait_serving("web", "v1")
        yield live
    finally:
        leftovers = live.down()
    assert not leftovers, f"processes outlived `cellops down`: {leftovers}"


def test_every_failing_cell_of_a_batch_is_rolled_back_then_retried(fleet: Fleet) -> None:
    canary = f"{fleet.prefix}-canary"
    batch = sorted(c for c in fleet.cells if c != canary)
    revision = fleet.release("web", "v2", crash=tuple(batch))
    rollout = fleet.wait_rollout(revision, RolloutState.HALTED, timeout=60)

    def both_back() -> bool:
        steps = fleet.store.cell_steps(rollout.id)
        return all(steps[c][1] is CellStep.RECOVERED for c in batch)

    try:
        wait_for("both cells of the batch to recover", both_back, timeout=60)
    except AssertionError:
        raise AssertionError(
            f"{fleet.store.cell_steps(rollout.id)}\n{fleet.describe(40)}"
        ) from None
    story = fleet.describe(40)
    events = fleet.events(rollout=rollout.id)
    assert sorted(applied_order(events)) == sorted([canary, *batch]), story
    assert sorted(e.cell for e in events if e.kind == "rolled-back") == batch, story
    fleet.wait_serving("web", "v1", cells=batch)
    fleet.wait_serving("web", "v2", cells=[canary])

    # retry without a commit (as after fixing a cause outside Git): planned afresh
    retried = fleet.cli("rollout", "retry", fleet.repo.path, "--state-dir", fleet.state)
    assert retried.returncode == 0, retried.stderr
    assert f"retry of rollout #{rollout.id}" in retried.stdout

    def next_rollout() -> bool:
        latest = fleet.store.rollouts(limit=1)[0]
        return latest.id != rollout.id and latest.revision == revision

    wait_for("the retried rollout to start", next_rollout, timeout=30)
    again = fleet.wait_rollout(revision, RolloutState.HALTED, timeout=60)
    assert again.id != rollout.id
    # planned against what the cells hold: the canary is proven on v2, so the first cell
    # of the batch goes alone first (canaryFallback), fails again, and nothing else moves
    assert applied_order(fleet.events(rollout=again.id)) == batch[:1], fleet.describe()
    refused = fleet.cli("rollout", "abort", fleet.repo.path, "--state-dir", fleet.state)
    assert refused.returncode == 2 and "no rollout is running" in refused.stderr


def test_a_release_without_probes_that_crashes_at_start_never_empties_the_cell(
    tmp_path: Path,
) -> None:
    """Without readiness probes a replica is ready once it has run a few seconds: one that
    crashes at start never replaces the old replica, so the cell keeps serving."""
    live = Fleet(
        tmp_path / "noprobe",
        f"n{secrets.token_hex(3)}",
        [ServiceDef("web", 18096)],  # no probes
        regions=("a",),
        progress_deadline="20s",
    )
    try:
        live.start()
        live.wait_rollout(live.head, RolloutState.COMPLETED, timeout=60)
        live.wait_serving("web", "v1")
        canary = f"{live.prefix}-canary"
        revision = live.release("web", "v2", crash=True)
        answers: list[str | None] = []

        def halted() -> bool:
            answers.append(live.get(canary, "web"))
            latest = live.rollout_of(revision)
            return latest is not None and latest.state is RolloutState.HALTED

        wait_for("the crashing release to halt", halted, timeout=90)
        assert answers and all(a == "v1" for a in answers), (answers, live.describe(30))
        assert applied_order(live.events(rollout=live.rollout_of(revision).id)) == [canary]  # type: ignore[union-attr]
    finally:
        leftovers = live.down()
    assert not leftovers, f"processes outlived `cellops down`: {leftovers}"
