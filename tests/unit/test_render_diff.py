"""Render and diff over real Git fleet repos: hashes change exactly when the workload does."""

from __future__ import annotations

from cellops.diff import Action, diff, ledger_of
from cellops.pipeline import Compiler
from cellops.render import DesiredFleet, render
from cellops.source.git import GitSource
from tests.fleetrepo import FleetRepo


def desired_at(repo: FleetRepo, rev: str) -> DesiredFleet:
    return render(Compiler(GitSource(repo.path)).revision(rev))


def hashes(fleet: DesiredFleet) -> dict[tuple[str, str], str]:
    return {(c, s): d.hash for c, cell in fleet.cells.items() for s, d in cell.services.items()}


def changed(repo: FleetRepo, before: str, after: str) -> list[tuple[str, str, Action]]:
    changes = diff(desired_at(repo, after), ledger_of(desired_at(repo, before)))
    return [(c.cell, c.service, c.action) for c in changes.entries()]


def test_overrides_apply_only_to_the_cells_they_select(fleet: FleetRepo) -> None:
    cells = desired_at(fleet, "HEAD").cells
    assert cells["us-1"].services["api"].spec.replicas == 3
    assert cells["eu-1"].services["api"].spec.replicas == 2
    # fleet defaults fill what the service leaves out
    assert cells["eu-1"].services["store"].spec.replicas == 1
    # cells with the same inputs share one desired object
    assert cells["eu-1"].services["api"] is cells["canary"].services["api"]


def test_hash_ignores_key_order_comments_and_formatting(fleet: FleetRepo) -> None:
    before = fleet.commit("same")
    text = fleet.read("services/store/service.yaml")
    reordered = text.replace(
        "  ports:\n    - {name: http, port: 8080}\n",
        "  # the one port\n  ports:\n    - port: 8080\n      name: http\n",
    )
    assert reordered != text
    fleet.write("services/store/service.yaml", reordered)
    after = fleet.commit("reformat")
    assert hashes(desired_at(fleet, before)) == hashes(desired_at(fleet, after))
    assert changed(fleet, before, after) == []


def test_one_service_in_one_cell_is_exactly_one_change(fleet: FleetRepo) -> None:
    before = fleet.commit("same")
    fleet.replace(
        "services/api/service.yaml",
        "  overrides:\n",
        "  overrides:\n    - cells: {names: [eu-1]}\n      patch: {env: {MODE: debug}}\n",
    )
    after = fleet.commit("debug api in eu-1")
    assert changed(fleet, before, after) == [("eu-1", "api", Action.CONFIGURED)]


def test_app_code_is_part_of_the_identity(fleet: FleetRepo) -> None:
    before = fleet.commit("same")
    fleet.write("services/store/app/main.py", 'print("store v2")\n')
    after = fleet.commit("store v2")
    assert sorted(changed(fleet, before, after)) == [
        (cell, "store", Action.CONFIGURED) for cell in ("canary", "eu-1", "us-1")
    ]


def test_relations_alone_restart_nothing(fleet: FleetRepo) -> None:
    before = fleet.commit("same")
    fleet.replace(
        "services/store/service.yaml", "provides: [store/v1]", "provides: [store/v1, kv/v1]"
    )
    after = fleet.commit("store also provides kv/v1")
    assert changed(fleet, before, after) == []


def test_selector_change_creates_and_deletes(fleet: FleetRepo) -> None:
    before = fleet.commit("same")
    # api leaves the us region; store stays everywhere
    fleet.replace(
        "services/api/service.yaml", "spec:\n", "spec:\n  cells: {selector: {region: eu}}\n"
    )
    after = fleet.commit("api only in eu")
    assert changed(fleet, before, after) == [("us-1", "api", Action.DELETED)]
    assert changed(fleet, after, before) == [("us-1", "api", Action.CREATED)]


def test_a_removed_cell_is_torn_down(fleet: FleetRepo) -> None:
    before = fleet.commit("same")
    fleet.remove("cells/us-1.yaml")
    after = fleet.commit("decommission us-1")
    assert sorted(changed(fleet, before, after)) == [
        ("us-1", "api", Action.DELETED),
        ("us-1", "store", Action.DELETED),
    ]


def test_backend_settings_are_part_of_the_identity(fleet: FleetRepo) -> None:
    before = fleet.commit("same")
    fleet.replace(
        "cells/eu-1.yaml", "  backend: local\n", "  backend: {type: local, address: 127.0.9.9}\n"
    )
    after = fleet.commit("pin eu-1's address")
    assert sorted(changed(fleet, before, after)) == [
        ("eu-1", "api", Action.CONFIGURED),
        ("eu-1", "store", Action.CONFIGURED),
    ]


def test_dependencies_are_transitive(fleet: FleetRepo) -> None:
    fleet.write(
        "services/cache/service.yaml",
        fleet.read("services/store/service.yaml")
        .replace("name: store", "name: cache")
        .replace("store/v1", "cache/v1")
        .replace("port: 8080", "port: 8082"),
    )
    fleet.write("services/cache/app/main.py", "print('cache')\n")
    fleet.replace(
        "services/store/service.yaml", "  contracts:", "  dependsOn: [cache]\n  contracts:"
    )
    head = fleet.commit("store needs cache")
    api = desired_at(fleet, head).cells["eu-1"].services["api"]
    assert api.depends_on == ("cache", "store")


def test_diff_against_an_empty_ledger_creates_everything(fleet: FleetRepo) -> None:
    changes = diff(desired_at(fleet, "HEAD"), {})
    assert changes.count(Action.CREATED) == 6
    assert changes.count(Action.UNCHANGED) == 0
    assert len(changes.entries(include_unchanged=True)) == 6
