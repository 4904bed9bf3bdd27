"""The component tests' controller: a fleet repo whose first commit has reached every cell."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellops.backends.fake import FakeBackend
from cellops.store.records import RolloutState
from tests.component.test_rollout_machine import Harness
from tests.fleetrepo import FleetRepo


@pytest.fixture
def harness(fleet: FleetRepo, tmp_path: Path) -> Harness:
    h = Harness(fleet, tmp_path / "cellops.db", FakeBackend())
    h.run(h.settled)  # the first commit everywhere
    assert h.latest() is RolloutState.COMPLETED
    return h
