"""`cellops tenant move`: a validated commit of the tenants file alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pygit2

from tests.fleetrepo import FleetRepo
from tests.routerkit.procs import CELLOPS

TENANTS = """apiVersion: cellops.dev/v1
kind: Tenants
metadata:
  name: main
spec:
  tenants:
    # acme's contract says EU
    - id: acme
      cell: eu-1
    - id: globex   # no pin yet
      weight: 2
    - id: qa
      canary: true
"""


def cellops(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CELLOPS), *map(str, args)], check=False, capture_output=True, text=True
    )


def committed(fleet: FleetRepo, path: str) -> str:
    repo = pygit2.Repository(str(fleet.path))
    blob = repo.revparse_single(f"HEAD:{path}")
    assert isinstance(blob, pygit2.Blob)
    return blob.data.decode()


def test_moves_are_commits_that_keep_the_file_as_written(fleet: FleetRepo) -> None:
    fleet.write("tenants/main.yaml", TENANTS)
    fleet.commit("tenants")
    fleet.write("notes.txt", "uncommitted work of the user\n")
    for tenant in ("acme", "globex", "initech"):
        done = cellops("tenant", "move", tenant, "us-1", "--repo", fleet.path)
        assert done.returncode == 0, done.stderr
    assert committed(fleet, "tenants/main.yaml") == TENANTS.replace(
        "cell: eu-1", "cell: us-1"
    ).replace(
        "    - id: globex   # no pin yet\n", "    - id: globex   # no pin yet\n      cell: us-1\n"
    )
    assert "- id: initech\n      cell: us-1\n" in committed(fleet, "tenants/moved.yaml")
    head = pygit2.Repository(str(fleet.path)).head.peel(pygit2.Commit)
    assert head.message.strip() == "Move tenant initech to cell us-1"
    assert (fleet.path / "notes.txt").exists()  # left alone, not committed
    status = pygit2.Repository(str(fleet.path)).status()
    assert "notes.txt" in status and "tenants/main.yaml" not in status


def test_a_move_that_would_be_rejected_is_not_committed(fleet: FleetRepo) -> None:
    fleet.write("tenants/main.yaml", TENANTS)
    fleet.replace("cells/us-1.yaml", "maxTenants: 10", "maxTenants: 0")
    head = fleet.commit("tenants")
    full = cellops("tenant", "move", "acme", "us-1", "--repo", fleet.path)
    assert full.returncode == 1 and "would be rejected" in full.stderr
    assert "tenants/main.yaml:8" in full.stdout and "full" in full.stdout
    canary = cellops("tenant", "move", "qa", "eu-1", "--repo", fleet.path)
    assert canary.returncode == 2 and "canary" in canary.stderr
    assert str(pygit2.Repository(str(fleet.path)).head.target) == head
    assert fleet.read("tenants/main.yaml") == TENANTS
