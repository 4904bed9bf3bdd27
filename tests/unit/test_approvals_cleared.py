"""A manual wave's approval is kept in the settings only while its rollout runs: when the
rollout ends (completed, halted, aborted, superseded) its approvals go with it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cellops.controller import operator
from cellops.controller.operator import approved_key
from cellops.store.records import RolloutState
from cellops.store.sqlite import SqliteStore
from tests.apikit import populate


@pytest.mark.parametrize(
    "end",
    [RolloutState.COMPLETED, RolloutState.HALTED, RolloutState.ABORTED, RolloutState.SUPERSEDED],
)
def test_a_rollouts_approvals_end_with_it(tmp_path: Path, end: RolloutState) -> None:
    store = SqliteStore(tmp_path / "cellops.db")
    rollout = populate(store)  # `rest` waits for its approval
    other = populate(SqliteStore(tmp_path / "cellops.db"))  # a newer rollout, still running
    store.set_setting(approved_key(other, "rest"), "{}")
    now = time.time()
    store.update_rollout(other, now, state=RolloutState.RUNNING)
    store.set_setting(approved_key(rollout, "rest"), '{"by": "test"}')

    store.update_rollout(rollout, now, state=RolloutState.RUNNING, reason="still")
    assert store.setting(approved_key(rollout, "rest")) is not None  # running: kept

    store.update_rollout(rollout, now, state=end, reason="ended")
    assert store.setting(approved_key(rollout, "rest")) is None
    assert store.setting(approved_key(other, "rest")) == "{}"  # another rollout's: kept


def test_an_approval_given_through_the_operator_is_cleared_at_the_end(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cellops.db")
    rollout = populate(store)
    operator.approve(store, time.time(), "rest", "test")
    assert store.setting(approved_key(rollout, "rest")) is not None
    refused = store.update_rollout(
        rollout, time.time(), if_state=RolloutState.HALTED, state=RolloutState.ABORTED
    )
    assert not refused and store.setting(approved_key(rollout, "rest")) is not None
    operator.steer(store, "abort", time.time(), "test")
    assert store.setting(approved_key(rollout, "rest")) is None
