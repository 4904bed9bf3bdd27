"""Render groups alike cells and diff compares each pair of groups once: the results must
be what a plain cell-by-cell computation gives, whatever the ledger looks like."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from cellops.diff import Action, diff, ledger_of
from cellops.pipeline import Compiler
from cellops.render import render
from cellops.source.git import GitSource
from cellops.spec.revision import Revision
from tests.fleetrepo import FleetRepo

API = "services/api/service.yaml"
K8S_CELL = """\
apiVersion: cellops.dev/v1
kind: Cell
metadata:
  name: eu-k8s
  labels: {region: eu, ring: main}
spec:
  backend: {type: kubernetes}
"""


def mixed_revision(fleet: FleetRepo) -> Revision:
    """Two backends, overlapping overrides: api has a different spec in each local cell."""
    fleet.write("cells/eu-k8s.yaml", K8S_CELL)
    fleet.replace(
        API,
        "  overrides:\n",
        "  overrides:\n    - cells: {names: [canary, us-1]}\n      patch: {env: {MODE: fast}}\n",
    )
    return Compiler(GitSource(fleet.path)).revision(fleet.commit("mixed"))


def test_every_cell_gets_what_placement_says(fleet: FleetRepo) -> None:
    revision = mixed_revision(fleet)
    desired = render(revision)
    assert set(desired.cells) == set(revision.cells)
    for name, cell in desired.cells.items():
        expected = {s: cells[name] for s, cells in revision.placement.items() if name in cells}
        assert list(cell.services) == list(expected), name
        for service, spec in expected.items():
            assert cell.services[service].spec is spec, (name, service)
    specs = {c: revision.placement["api"][c].model_dump() for c in ("canary", "eu-1", "us-1")}
    assert len({str(s) for s in specs.values()}) == 3
    hashes = {name: cell.services["store"].hash for name, cell in desired.cells.items()}
    assert hashes["canary"] == hashes["eu-1"] == hashes["us-1"] != hashes["eu-k8s"]


def test_alike_cells_share_one_mapping_and_others_do_not(fleet: FleetRepo) -> None:
    fleet.write("cells/eu-2.yaml", fleet.read("cells/eu-1.yaml").replace("eu-1", "eu-2"))
    cells = render(mixed_revision(fleet)).cells
    assert cells["eu-1"].services is cells["eu-2"].services
    others = [cells[n].services for n in ("canary", "eu-1", "us-1", "eu-k8s")]
    assert len({id(m) for m in others}) == 4


@dataclass(frozen=True)
class Applied:
    hash: str
    depends_on: tuple[str, ...] = ()


class FreshLedger(Mapping[str, Mapping[str, Applied]]):
    """A ledger that builds a new mapping on every read, as one read from a store may:
    a freed mapping's id can come back for the next cell's."""

    def __init__(self, rows: dict[str, dict[str, str]]) -> None:
        self.rows = rows

    def __getitem__(self, cell: str) -> Mapping[str, Applied]:
        return {service: Applied(h) for service, h in self.rows[cell].items()}

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def test_diff_against_a_ledger_of_fresh_mappings_is_cell_by_cell(fleet: FleetRepo) -> None:
    for name in ("eu-2", "eu-3"):  # three alike cells, one of them stale
        fleet.write(f"cells/{name}.yaml", fleet.read("cells/eu-1.yaml").replace("eu-1", name))
    desired = render(mixed_revision(fleet))
    rows = {
        name: {service: d.hash for service, d in cell.services.items()}
        for name, cell in desired.cells.items()
    }
    rows["eu-3"]["store"] = "stale"
    rows["us-1"].pop("api")
    rows["gone"] = {"store": "old"}
    changes = diff(desired, FreshLedger(rows))
    assert [(c.cell, c.service, c.action) for c in changes.entries()] == [
        ("eu-3", "store", Action.CONFIGURED),
        ("gone", "store", Action.DELETED),
        ("us-1", "api", Action.CREATED),
    ]
    unchanged = {c.cell: c.unchanged for c in changes.cells}
    assert unchanged == {
        "canary": ("api", "store"),
        "eu-1": ("api", "store"),
        "eu-2": ("api", "store"),
        "eu-3": ("api",),
        "eu-k8s": ("api", "store"),
        "gone": (),
        "us-1": ("store",),
    }


def test_diff_of_a_shared_and_a_copied_ledger_agree(fleet: FleetRepo) -> None:
    before = render(Compiler(GitSource(fleet.path)).revision("HEAD"))
    after = render(mixed_revision(fleet))
    copied = {name: dict(services) for name, services in ledger_of(before).items()}
    assert diff(after, ledger_of(before)) == diff(after, copied)
    assert [(c.cell, c.service) for c in diff(after, copied).entries()] == [
        ("canary", "api"),
        ("eu-k8s", "api"),
        ("eu-k8s", "store"),
        ("us-1", "api"),
    ]
