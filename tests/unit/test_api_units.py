"""The API's pure parts: tokens kept hashed and checked, the read models (every cell,
also those not applied yet, with its address or namespace; why a rollout waits), and the
listener's address parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellops.api.listener import parse_listen
from cellops.controller import operator
from cellops.query import cells as cell_queries
from cellops.query import rollouts
from cellops.query.base import iso, parse_time
from cellops.query.history import problem_line
from cellops.render import DesiredCell, DesiredFleet
from cellops.spec.cell import CellSpec, CellState, KubernetesBackend, LocalBackend
from cellops.store.records import Phase
from cellops.store.sqlite import SqliteStore
from cellops.store.tokens import PREFIX, Role, digest
from tests.apikit import healthy, populate


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "cellops.db")


def test_a_token_is_kept_only_as_its_hash(store: SqliteStore, tmp_path: Path) -> None:
    record, token = store.create_token("ci", Role.OPERATOR, 100.0)
    assert token.startswith(PREFIX) and len(token) >= len(PREFIX) + 43  # 32 random bytes
    store.close()
    raw = (tmp_path / "cellops.db").read_bytes()
    assert token.encode() not in raw and digest(token).encode() in raw
    store = SqliteStore(tmp_path / "cellops.db")
    assert store.authenticate(token, 101.0) == record
    assert store.authenticate(token + "x", 101.0) is None
    assert store.authenticate("", 101.0) is None


def test_an_expired_or_revoked_token_lets_no_one_in(store: SqliteStore) -> None:
    _, brief = store.create_token("brief", Role.VIEWER, 100.0, expires=200.0)
    assert store.authenticate(brief, 199.0) is not None
    assert store.authenticate(brief, 200.0) is None
    _, kept = store.create_token("kept", Role.VIEWER, 100.0)
    assert [t.name for t in store.revoke_token("kept", 150.0)] == ["kept"]
    assert store.authenticate(kept, 151.0) is None
    assert store.revoke_token("kept", 160.0) == []  # once


def test_roles() -> None:
    assert Role.OPERATOR.allows(Role.VIEWER) and Role.OPERATOR.allows(Role.OPERATOR)
    assert Role.VIEWER.allows(Role.VIEWER) and not Role.VIEWER.allows(Role.OPERATOR)


def _cell(name: str, backend: LocalBackend | KubernetesBackend) -> DesiredCell:
    labels = {"region": "eu", "ring": "main"}
    return DesiredCell(name, labels, CellState.ACTIVE, CellSpec(backend=backend), {})


def test_every_cell_is_listed_with_where_it_lives(store: SqliteStore) -> None:
    populate(store, cells=2, services=1)
    desired = DesiredFleet(
        "x" * 40,
        {
            "cell-0000": _cell("cell-0000", LocalBackend(address="127.0.0.9")),
            "new-k8s": _cell("new-k8s", KubernetesBackend(type="kubernetes", context="prod")),
        },
    )
    found = {c["name"]: c for c in cell_queries.cells(store, healthy, desired)}
    assert set(found) == {"cell-0000", "cell-0001", "new-k8s"}
    assert found["cell-0000"]["address"] == "127.0.0.9" and found["cell-0000"]["applied"]
    assert found["new-k8s"]["namespace"] == "cell-new-k8s"
    assert found["new-k8s"]["context"] == "prod" and found["new-k8s"]["region"] == "eu"
    assert not found["new-k8s"]["applied"] and found["new-k8s"]["health"] == "not-applied"
    assert found["cell-0001"]["rollout"]["step"] == "pending"
    assert cell_queries.cell(store, healthy, "nope", desired) is None


def test_why_a_rollout_waits(store: SqliteStore) -> None:
    rollout_id = populate(store, cells=3, services=1)
    assert "waiting for approval" in str(rollouts.rollout(store)["waiting"])  # type: ignore[index]
    operator.approve(store, 1.0)
    store.update_rollout(rollout_id, 2.0, phase=Phase.PROGRESS, elapsed=12.0)
    waiting = rollouts.rollout(store)["waiting"]  # type: ignore[index]
    assert waiting.startswith("wave rest: waiting for cell-0001, cell-0002 to be healthy")
    assert "(12s of 120s progress deadline)" in waiting
    operator.steer(store, "pause", 3.0)
    assert rollouts.rollout(store)["waiting"].startswith("paused")  # type: ignore[index]


def test_problems_and_times_read_as_the_cli_prints_them() -> None:
    problem = {"file": "cells/eu.yaml", "line": 3, "field": "spec.backend", "message": "bad"}
    assert problem_line(problem) == "cells/eu.yaml:3: spec.backend: bad"
    assert problem_line({"file": "", "line": 0, "field": "", "message": "poison"}) == "poison"
    assert iso(0.0) == "1970-01-01T00:00:00.000Z" and iso(None) is None
    assert parse_time("1970-01-01T00:01:00Z") == 60.0 == parse_time("1970-01-01T00:01:00")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8470", ("127.0.0.1", 8470)),
        (":0", ("127.0.0.1", 0)),
        ("[::1]:8470", ("::1", 8470)),
        ("ops.example.com:443", ("ops.example.com", 443)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("8470", "expected HOST:PORT"),
        ("127.0.0.1:http", "expected HOST:PORT"),
        ("127.0.0.1:70000", "port 70000 is out of range"),
        ("no way:1", "is not an address or host name"),
    ],
)
def test_bad_listen_addresses_say_what_is_wrong(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_listen(text)
