"""Tenants and cell states during rollouts: unbaked cells take no new tenant, canary
tenants stay in the canary ring, a retired cell is empty and unrouted."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import ValidationError, validate

from cellops.cli.schema import Kind, schema_of
from cellops.model.errors import RevisionRejected
from cellops.source.git import GitSource
from cellops.spec.loader import load_revision
from cellops.tenancy.fleet import routing_table
from cellops.tenancy.placement import CellSlot, TenantEntry, place
from cellops.tenancy.ring import Ring, key_hash
from tests.fleetrepo import EXAMPLE_FLEET, FleetRepo

names = st.lists(
    st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True), min_size=2, max_size=8, unique=True
)
tenant_ids = st.lists(
    st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True), min_size=1, max_size=120, unique=True
)


@settings(max_examples=40, deadline=None)
@given(cells=names, ids=tenant_ids, data=st.data())
def test_a_new_tenant_is_never_placed_on_an_unbaked_cell(
    cells: list[str], ids: list[str], data: st.DataObject
) -> None:
    unbaked = set(data.draw(st.lists(st.sampled_from(cells), max_size=len(cells) - 1)))
    existing = data.draw(st.lists(st.sampled_from(ids), unique=True))
    slots = [CellSlot(c) for c in cells]
    entries = [TenantEntry(t) for t in ids]
    free = place(slots, entries).assignment
    previous = {t: free[t] for t in existing}
    result = place(slots, entries, unbaked=unbaked, previous=previous)
    assert not result.errors and set(result.assignment) == set(ids)
    for tenant, cell in result.assignment.items():
        if tenant in previous:
            assert cell == free[tenant]  # existing tenants stay where they are
        else:
            assert cell not in unbaked
            # the walk skips unbaked cells only: a tenant whose cell baked is not moved
            assert free[tenant] in unbaked or cell == free[tenant]
    again = place(list(reversed(slots)), entries[::-1], unbaked=unbaked, previous=previous)
    assert again.assignment == result.assignment  # deterministic


@settings(max_examples=40, deadline=None)
@given(ids=tenant_ids)
def test_capacity_still_holds_when_new_tenants_avoid_unbaked_cells(ids: list[str]) -> None:
    cap = -(-len(ids) // 3)
    slots = [CellSlot(c, max_tenants=cap) for c in ("a", "b", "c")]
    result = place(slots, [TenantEntry(t) for t in ids], unbaked={"a"})
    assert not result.errors and len(result.assignment) == len(ids)
    assert all(n <= cap for n in Counter(result.assignment.values()).values())


def test_canary_tenants_stay_in_the_canary_ring_while_it_bakes() -> None:
    slots = [CellSlot("canary", canary=True), CellSlot("a"), CellSlot("b")]
    entries = [TenantEntry("qa", canary=True), *(TenantEntry(f"t{i}") for i in range(50))]
    result = place(slots, entries, unbaked={"canary"})
    assert result.assignment["qa"] == "canary"
    assert [t for t, c in result.assignment.items() if c == "canary"] == ["qa"]


def test_when_every_cell_is_unbaked_new_tenants_are_still_placed() -> None:
    result = place([CellSlot("a"), CellSlot("b")], [TenantEntry("t")], unbaked={"a", "b"})
    assert result.assignment["t"] in ("a", "b") and not result.errors


def test_a_pin_to_a_retired_cell_is_an_error() -> None:
    result = place([CellSlot("a"), CellSlot("old", "retired")], [TenantEntry("t", pin="old")])
    [error] = result.errors
    assert "retired cell 'old'" in error.message and "must be empty" in error.message


RETIRE = ("cells/us-1.yaml", "  capacity:\n", "  state: retired\n  capacity:\n")


def test_a_retired_cell_gets_no_route_and_no_tenant(fleet: FleetRepo) -> None:
    fleet.replace(*RETIRE)
    fleet.write(
        "tenants/main.yaml",
        "apiVersion: cellops.dev/v1\nkind: Tenants\nmetadata: {name: main}\nspec:\n"
        "  tenants:\n" + "".join(f"    - id: t{i}\n" for i in range(20)),
    )
    revision = load_revision(GitSource(fleet.path).snapshot(fleet.commit("retire us-1")))
    table = routing_table(revision.fleet, revision.cells, revision.tenants, revision.id, 1)
    assert "us-1" not in table.cells and "us-1" not in table.ring
    assert "us-1" not in set(table.tenants.values())


@pytest.mark.parametrize(
    ("tenants", "line", "field", "words"),
    [
        ("  tenants:\n    - id: acme\n      cell: us-1\n", 6, "spec.tenants", "retired cell"),
        ("  routing:\n    canaryCells: [us-1]\n", 6, "spec.routing.canaryCells[0]", "retired"),
    ],
)
def test_a_retired_cell_named_by_tenants_is_rejected_at_its_line(
    fleet: FleetRepo, tenants: str, line: int, field: str, words: str
) -> None:
    fleet.replace(*RETIRE)
    fleet.write(
        "tenants/main.yaml",
        "apiVersion: cellops.dev/v1\nkind: Tenants\nmetadata: {name: main}\nspec:\n" + tenants,
    )
    with pytest.raises(RevisionRejected) as caught:
        load_revision(GitSource(fleet.path).snapshot(fleet.commit("bad")))
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("tenants/main.yaml", line, field)
    assert words in problem.message


def test_the_schema_knows_tenants_and_the_retired_state() -> None:
    tenants = yaml.safe_load((EXAMPLE_FLEET / "tenants" / "customers.yaml").read_text())
    validate(tenants, schema_of(Kind.TENANTS))
    tenants["spec"]["tenants"][0]["wieght"] = 2
    with pytest.raises(ValidationError):
        validate(tenants, schema_of(Kind.TENANTS))
    cell = yaml.safe_load((EXAMPLE_FLEET / "cells" / "us-1.yaml").read_text())
    cell["spec"]["state"] = "retired"
    validate(cell, schema_of(Kind.CELL))


@settings(max_examples=40, deadline=None)
@given(cells=names, keys=st.lists(st.text(min_size=1, max_size=12), max_size=200))
def test_the_rings_bucket_table_gives_the_owner_a_search_would(
    cells: list[str], keys: list[str]
) -> None:
    ring = Ring(cells, points=st_points(len(cells)))
    hashes, owners = ring.points()
    for key in keys:
        expected = owners[bisect_right(hashes, key_hash(key)) % len(owners)]
        assert ring.owner(key) == expected


def st_points(cells: int) -> int:
    return 1 + cells % 7  # few points: wide gaps and crowded buckets both occur
