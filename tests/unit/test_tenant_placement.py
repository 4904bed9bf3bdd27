"""Placement of tenants: pure properties (hypothesis) and the Tenants kind in a revision."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cellops.model.errors import RevisionRejected
from cellops.model.problems import Severity
from cellops.source.git import GitSource
from cellops.spec.loader import load_revision
from cellops.tenancy.exposure import exposure
from cellops.tenancy.fleet import routing_table
from cellops.tenancy.placement import CellSlot, TenantEntry, place
from cellops.tenancy.table import CellRoute, RoutingTable, TableError, parse_table
from tests.fleetrepo import FleetRepo

names = st.lists(
    st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True), min_size=1, max_size=8, unique=True
)
tenant_ids = st.lists(
    st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True), min_size=0, max_size=300, unique=True
)


def _entries(ids: list[str]) -> list[TenantEntry]:
    return [TenantEntry(t) for t in ids]


@given(cells=names, ids=tenant_ids)
def test_placement_is_deterministic_and_ignores_input_order(
    cells: list[str], ids: list[str]
) -> None:
    slots = [CellSlot(c, max_tenants=len(ids) // len(cells) + 2) for c in cells]
    first = place(slots, _entries(ids))
    again = place(list(reversed(slots)), _entries(list(reversed(ids))))
    assert first.assignment == again.assignment
    assert set(first.assignment) == set(ids) and not first.errors


@given(cells=names, ids=tenant_ids, spare=st.integers(0, 5))
def test_no_cell_is_over_capacity(cells: list[str], ids: list[str], spare: int) -> None:
    cap = -(-len(ids) // len(cells)) + spare  # exactly enough room with spare=0
    result = place([CellSlot(c, max_tenants=cap) for c in cells], _entries(ids))
    assert not result.errors and len(result.assignment) == len(ids)
    assert all(n <= cap for n in Counter(result.assignment.values()).values())


@settings(max_examples=50)
@given(cells=names, ids=tenant_ids, new=st.from_regex(r"z[a-z0-9]{1,6}", fullmatch=True))
def test_a_joining_cell_only_takes_tenants_and_a_leaving_one_only_gives(
    cells: list[str], ids: list[str], new: str
) -> None:
    assume(new not in cells)
    before = place([CellSlot(c) for c in cells], _entries(ids)).assignment
    after = place([CellSlot(c) for c in [*cells, new]], _entries(ids)).assignment
    assert all(after[t] in (before[t], new) for t in ids)  # nobody moves between old cells
    drained = place([CellSlot(c) for c in cells] + [CellSlot(new, "draining")], _entries(ids))
    assert drained.assignment == before  # draining: its tenants go back where they were


def test_a_joining_cell_moves_about_its_share() -> None:
    ids = [f"t{i}" for i in range(20_000)]
    cells = [f"c{i}" for i in range(20)]
    before = place([CellSlot(c) for c in cells], _entries(ids)).assignment
    after = place([CellSlot(c) for c in [*cells, "new"]], _entries(ids)).assignment
    moved = sum(before[t] != after[t] for t in ids)
    assert 0.02 * len(ids) < moved < 0.1 * len(ids)  # about 1/21


def test_pins_canary_and_the_states_that_take_no_tenants() -> None:
    slots = [
        CellSlot("canary", canary=True),
        CellSlot("a", max_tenants=1),
        CellSlot("d", "draining"),
        CellSlot("q", "quarantined"),
    ]
    tenants = [
        TenantEntry("pinned", pin="a"),
        TenantEntry("qa", canary=True),
        TenantEntry("over", pin="a"),
        TenantEntry("to-draining", pin="d"),
        TenantEntry("nowhere", pin="gone"),
        TenantEntry("free"),
    ]
    result = place(slots, tenants)
    assert result.assignment == {"pinned": "a", "qa": "canary", "free": "canary"}
    messages = {e.tenant: e.message for e in result.errors}
    assert "full" in messages["over"]
    assert "draining cell 'd'" in messages["to-draining"]
    assert "unknown cell 'gone'" in messages["nowhere"]


def test_over_capacity_is_an_error_not_an_overfull_cell() -> None:
    result = place([CellSlot("a", max_tenants=2)], _entries(["x", "y", "z"]))
    assert len(result.assignment) == 2
    [error] = result.errors
    assert "no cell has room" in error.message and "add up to 2" in error.message


TENANTS = """apiVersion: cellops.dev/v1
kind: Tenants
metadata:
  name: main
spec:
  routing:
    port: 9000
    entryPoints: {us-1: "http://lb.example:80/"}
  tenants:
    - id: acme
      cell: eu-1
    - id: qa
      canary: true
    - id: big
      weight: 5
"""


def test_a_revision_places_its_tenants_into_a_routing_table(fleet: FleetRepo) -> None:
    fleet.write("tenants/main.yaml", TENANTS)
    revision = load_revision(GitSource(fleet.path).snapshot(fleet.commit("tenants")))
    table = routing_table(revision.fleet, revision.cells, revision.tenants, revision.id, 7)
    assert table.lookup("acme") == "eu-1"
    assert table.lookup("qa") == "canary"  # the first wave's selector is the canary ring
    assert table.cells["us-1"].url == "http://lb.example:80"
    assert table.cells["eu-1"].url.endswith(":9000")
    assert table.lookup("never-listed") in table.ring
    assert parse_table(table.to_json()) == table


def test_an_impossible_placement_is_rejected_at_its_line(fleet: FleetRepo) -> None:
    text = TENANTS.replace("cell: eu-1", "cell: mars") + "    - id: acme\n"
    fleet.write("tenants/main.yaml", text)
    with pytest.raises(RevisionRejected) as caught:
        load_revision(GitSource(fleet.path).snapshot(fleet.commit("bad")))
    found = {
        (p.file, p.line, p.message.split(":")[0])
        for p in caught.value.problems
        if p.severity is Severity.ERROR
    }
    assert found == {
        ("tenants/main.yaml", 10, "tenant 'acme' pinned to unknown cell 'mars'"),
        ("tenants/main.yaml", 16, "tenant 'acme' is already listed at tenants/main.yaml"),
    }


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"{", "not JSON"),
        (b'{"format": 1, "version": 1, "cells": {}, "tenants": {"a": "x"}, "ring": []}', "unknown"),
        (b'{"format": 2}', "format"),
    ],
)
def test_a_malformed_table_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(TableError, match=why):
        parse_table(data)


def test_exposure_is_the_weighted_share_on_unbaked_cells() -> None:
    routes = {c: CellRoute("http://127.0.0.1:1") for c in ("canary", "a")}
    tenants = {"qa": "canary", "big": "a", "small": "a"}
    table = RoutingTable(1, "r", routes, tenants, ("a",), weights={"big": 8})
    assert exposure(table, ["canary"]) == 1 / 10
    assert exposure(table, ["canary", "a"]) == 1.0
    assert exposure(replace(table, tenants={}), ["a"]) == 0.0
