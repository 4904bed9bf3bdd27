from __future__ import annotations

from pathlib import Path

import pytest

from tests.fleetrepo import EXAMPLE_FLEET, FleetRepo


@pytest.fixture
def fleet(tmp_path: Path) -> FleetRepo:
    """The small base fleet (tests/fixtures/base-fleet) as a Git repo with one commit."""
    repo = FleetRepo(tmp_path / "fleet")
    repo.commit("initial fleet")
    return repo


@pytest.fixture
def example_fleet(tmp_path: Path) -> FleetRepo:
    """The example fleet (examples/fleet) as a Git repo with one commit."""
    repo = FleetRepo(tmp_path / "example", EXAMPLE_FLEET)
    repo.commit("example fleet")
    return repo
