"""Cross-document rules on fleets where services overlap in only some cells."""

from __future__ import annotations

import pytest

from cellops.model.errors import RevisionRejected
from cellops.model.problems import Problem, Severity
from cellops.source.git import GitSource
from cellops.spec.loader import load_revision
from tests.fleetrepo import FleetRepo

STORE = "services/store/service.yaml"
API = "services/api/service.yaml"


def rejected(repo: FleetRepo) -> list[Problem]:
    head = repo.commit("change")
    with pytest.raises(RevisionRejected) as caught:
        load_revision(GitSource(repo.path).snapshot(head))
    return [p for p in caught.value.problems if p.severity is Severity.ERROR]


def test_a_port_an_override_brings_in_is_blamed_on_that_override(fleet: FleetRepo) -> None:
    fleet.write(
        STORE,
        fleet.read(STORE)
        + "  overrides:\n"
        + "    - cells: {selector: {region: us}}\n"
        + "      patch: {ports: [{name: http, port: 8081}]}\n",
    )
    [problem] = rejected(fleet)
    assert (problem.file, problem.field) == (STORE, "spec.overrides[0].patch.ports[0].port")
    assert (
        problem.line
        == fleet.read(STORE).splitlines().index("      patch: {ports: [{name: http, port: 8081}]}")
        + 1
    )
    assert problem.message.startswith("port 8081 is also used by api in local cells us-1:")


def test_a_second_provider_is_reported_only_where_both_run(fleet: FleetRepo) -> None:
    fleet.replace(API, "  contracts:\n", "  contracts:\n    provides: [store/v1]\n")
    fleet.replace(API, "  dependsOn: [store]\n", "  cells: {selector: {region: eu}}\n")
    fleet.replace(API, "    - cells: {selector: {region: us}}\n", "    - cells: {names: [eu-1]}\n")
    messages = {(p.file, p.message) for p in rejected(fleet)}
    for file, other in ((API, "store"), (STORE, "api")):
        assert (
            file,
            f"store/v1 is also provided by {other} in cells canary, eu-1:"
            " expected one provider per cell",
        ) in messages


def test_a_consumer_lacks_a_provider_only_where_none_runs(fleet: FleetRepo) -> None:
    fleet.replace(STORE, "spec:\n", "spec:\n  cells: {selector: {region: eu}}\n")
    fleet.replace(API, "  dependsOn: [store]\n", "")
    [problem] = rejected(fleet)
    assert (problem.file, problem.field) == (API, "spec.contracts.consumes[0]")
    assert problem.message == "store/v1 has no provider in cells us-1, where api runs"
