"""One address, one owner: derived addresses differ between fleets, and an address held by
another cell (of another fleet, or of another state folder of the same fleet) is refused
when an agent starts and when the controller ensures the cell, naming who holds it.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from cellops.backends.local import ownership, process
from cellops.backends.local.backend import LocalCells
from cellops.backends.local.layout import cell_paths, read_json
from cellops.cli.demo import fleet_copy
from cellops.model.errors import BackendError
from cellops.pipeline import Compiler
from cellops.render import DesiredCell
from cellops.source.git import GitSource, create_repository
from cellops.spec.cell import CellSpec, CellState, LocalBackend, derived_address
from tests.fleetrepo import FleetRepo
from tests.integration.local_cell import (
    Cell,
    Cells,
    assert_no_processes_left,
    fresh_address,
    wait_for,
    write_app,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def cells(tmp_path: Path, request: pytest.FixtureRequest) -> Cells:
    made = Cells(tmp_path, write_app(tmp_path / "app"))
    request.addfinalizer(made.finish)
    return made


def test_two_fleets_with_the_same_cell_names_get_different_addresses(tmp_path: Path) -> None:
    tag = secrets.token_hex(3)
    rendered = {}
    for fleet in (f"a{tag}", f"b{tag}"):
        repo = FleetRepo(tmp_path / fleet)
        repo.replace("cellops.yaml", "name: base", f"name: {fleet}")
        repo.commit(fleet)
        rendered[fleet] = Compiler(GitSource(repo.path)).desired("HEAD")
    first, second = (rendered[f"a{tag}"].cells["eu-1"], rendered[f"b{tag}"].cells["eu-1"])
    assert isinstance(first.spec.backend, LocalBackend)
    assert isinstance(second.spec.backend, LocalBackend)
    # the rendered cell carries its address: the ledger keeps it, a rollback restores it
    assert first.spec.backend.address == derived_address(f"a{tag}", "eu-1")
    assert second.spec.backend.address == derived_address(f"b{tag}", "eu-1")
    assert first.spec.backend.address != second.spec.backend.address
    # the address is part of what runs: another fleet name, another version of each service
    assert first.services["store"].hash != second.services["store"].hash


def test_two_demos_at_once_get_different_addresses(tmp_path: Path) -> None:
    """Two `cellops demo` runs on one machine (a second terminal, `make test`): each copy
    of the example fleet is named afresh, so the second is not refused every address as
    held by the first's cells (it was: both derived them from the name `demo`)."""
    addresses: dict[str, set[str | None]] = {}
    for run in ("first", "second"):
        name = fleet_copy(tmp_path / run)
        create_repository(tmp_path / run, "demo fleet")
        desired = Compiler(GitSource(tmp_path / run)).desired("HEAD")
        assert desired.cells, "the example fleet has cells"
        for cell in desired.cells.values():
            assert isinstance(cell.spec.backend, LocalBackend)
            assert cell.spec.backend.address == derived_address(name, cell.name)
            addresses.setdefault(run, set()).add(cell.spec.backend.address)
    assert not addresses["first"] & addresses["second"]


def _desired(name: str, address: str) -> DesiredCell:
    spec = CellSpec(backend=LocalBackend(address=address))
    return DesiredCell(name, {}, CellState.ACTIVE, spec, {})


def test_an_address_held_by_another_state_folder_is_refused(cells: Cells, tmp_path: Path) -> None:
    owner = cells("eu-1")
    owner.start_agent()
    root = owner.paths.root.resolve()
    held = wait_for(
        "the cell's proxy to hold its address",
        lambda: (h := ownership.holder(owner.host)) and h.is_cell(root) and h,
        15,
    )
    assert held.cell == "eu-1" and held.pid == owner.proxy()["pid"]

    # the same cell name in another state folder (the same fleet twice, or another fleet
    # that pinned the same address): the controller's ensure refuses, naming the holder
    other = tmp_path / "other-state"
    backend = LocalCells(other, lambda tree, target: None)
    with pytest.raises(BackendError) as refused:
        backend.ensure(_desired("eu-1", owner.host))
    message = str(refused.value)
    assert message.startswith(f"cell eu-1: address {owner.host} is held by cell eu-1")
    assert f"of the state folder {tmp_path / 'state'} (pid {held.pid})" in message
    assert not refused.value.transient
    assert not cell_paths(other, "eu-1").pidfile.exists()  # no agent was started

    # an agent started there by hand refuses too, before it runs anything
    intruder = Cell(other, "eu-1", owner.app)
    intruder.paths.root.mkdir(parents=True)
    agent = [sys.executable, "-m", "cellops.backends.local.agent"]
    done = subprocess.run(
        [*agent, "--cell-root", str(intruder.paths.root), "--host", owner.host],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done
    assert f"address {owner.host} is held by cell eu-1 of the state folder" in done.stdout
    assert not intruder.paths.pidfile.exists() and not intruder.paths.proxy.exists()

    # its own folder is not refused: a restarted controller ensures the cell as before
    mine = LocalCells(tmp_path / "state", lambda tree, target: None)
    assert mine.ensure(_desired("eu-1", owner.host)) is False


def test_a_cell_moved_to_another_address_frees_the_old_one(tmp_path: Path) -> None:
    """A new fleet name (or an upgrade) moves a cell with a derived address: its agent and
    proxy start again on the new address, and the old one is free for others."""
    backend = LocalCells(tmp_path / "state", lambda tree, target: None)
    root = cell_paths(tmp_path / "state", "mover").root.resolve()
    before, after = fresh_address(), fresh_address()
    try:
        assert backend.ensure(_desired("mover", before)) is True
        wait_for("the old address held", lambda: _holds(before, root), 15)
        agent = read_json(cell_paths(tmp_path / "state", "mover").pidfile) or {}
        assert agent["host"] == before
        assert backend.ensure(_desired("mover", after)) is True  # a new agent, elsewhere
        wait_for("the new address held", lambda: _holds(after, root), 15)
        wait_for("the old address free", lambda: ownership.holder(before) is None, 15)
        moved = read_json(cell_paths(tmp_path / "state", "mover").pidfile) or {}
        assert moved["host"] == after and moved["pid"] != agent["pid"]
        assert process.start_time(agent["pid"]) is None
        assert backend.ensure(_desired("mover", after)) is False
    finally:
        backend.stop("mover", workloads=True)
    assert ownership.holder(after) is None  # stopped with the cell
    assert_no_processes_left(tmp_path)


def _holds(address: str, root: Path) -> bool:
    found = ownership.holder(address)
    return found is not None and found.is_cell(root)
