"""The read commands as a kubectl user runs them (`get`, `describe`, `events`, `status`,
`history`, `rollout status`), on a controller's store in a temp state folder: tables for
people, and `-o json|yaml` with ISO-8601 times and structured fields for scripts."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from cellops.store.records import RevisionRecord, RolloutState
from cellops.store.sqlite import SqliteStore
from tests.apikit import BAD, NEW, populate
from tests.clirun import CELLOPS, cellops
from tests.fleetrepo import FleetRepo

ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return cellops(*args, columns=80)  # narrow: tables must still not wrap


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A store with a fleet: GOOD everywhere, NEW waiting at its manual `rest` wave, BAD
    rejected (tests/apikit.populate)."""
    folder = tmp_path / "state"
    store = SqliteStore(folder / "cellops.db")
    populate(store, cells=3, services=2)
    store.close()
    return folder


@pytest.mark.slow  # many commands, each a process
def test_get_lists_each_kind_one_line_each(state: Path) -> None:
    cells = run("get", "cells", "--state-dir", state)
    assert cells.returncode == 0, cells.stderr
    lines = cells.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "BACKEND", "WHERE"]
    assert [line.split()[0] for line in lines[1:]] == ["cell-0000", "cell-0001", "cell-0002"]
    assert all(len(line) > 80 for line in lines[1:]), "a pipe gets whole lines, never wrapped"
    rollouts = run("get", "ro", "--state-dir", state).stdout
    assert "running" in rollouts and "rest" in rollouts and NEW[:12] in rollouts
    revisions = run("get", "revisions", "--state-dir", state).stdout
    assert f"{BAD[:12]}   rejected (1 problem(s))" in revisions
    services = run("get", "svc", "svc-00", "--state-dir", state).stdout.splitlines()
    assert len(services) == 2 and services[1].startswith("svc-00")
    wrong = run("get", "pods", "--state-dir", state)
    assert wrong.returncode == 2 and "'pods' is not one of: cells, services" in wrong.stderr


def test_get_as_json_and_yaml_has_structured_fields_and_iso_times(state: Path) -> None:
    rollouts = json.loads(run("get", "rollouts", "-o", "json", "--state-dir", state).stdout)
    assert rollouts[0]["state"] == "running" and rollouts[0]["wave_name"] == "rest"
    assert rollouts[0]["created_at"] and re.match(ISO, rollouts[0]["created_at"])
    revisions = yaml.safe_load(run("get", "rev", "-o", "yaml", "--state-dir", state).stdout)
    rejected = next(r for r in revisions if r["revision"] == BAD)
    assert rejected["problems"][0]["text"] == (
        "services/web.yaml:7: spec.replicas: expected an integer"
    )
    accepted = next(r for r in revisions if r["revision"] == NEW)
    assert accepted["rollout"]["state"] == "running"  # a structure, not a string


@pytest.mark.slow  # many commands, each a process
def test_describe_a_cell_a_service_and_a_rollout_with_their_events(state: Path) -> None:
    cell = run("describe", "cell", "cell-0000", "--state-dir", state)
    assert cell.returncode == 0, cell.stderr
    assert "Name:" in cell.stdout and "Services:" in cell.stdout and "Events:" in cell.stdout
    assert "applied cell-0000" in cell.stdout  # its event
    service = run("describe", "service", "svc-01", "--state-dir", state).stdout
    assert service.count("cell-000") == 3
    rollout = run("describe", "rollout", "--state-dir", state)
    assert "rest (needs approval)" in rollout.stdout
    assert "Waiting:" in rollout.stdout and "approv" in rollout.stdout
    document = json.loads(run("describe", "rollout", "-o", "json", "--state-dir", state).stdout)
    assert [w["name"] for w in document["plan"]] == ["canary", "rest"]
    assert {e["kind"] for e in document["events"]} >= {"rollout-started", "wave-done"}
    missing = run("describe", "cell", "nope", "--state-dir", state)
    assert missing.returncode == 2 and "no cell 'nope'" in missing.stderr


@pytest.mark.slow  # many commands, each a process
def test_events_are_filtered_by_cell_kind_rollout_and_time(state: Path) -> None:
    every = json.loads(run("events", "-o", "json", "--state-dir", state).stdout)
    assert [e["kind"] for e in every] == [
        "rollout-started",
        "applied",
        "revision-rejected",
        "wave-done",
    ]  # oldest first, as a log reads
    applied = json.loads(run("events", "-k", "applied", "-o", "json", "--state-dir", state).stdout)
    assert [e["cell"] for e in applied] == ["cell-0000"]
    by_cell = run("events", "--cell", "cell-0000", "--state-dir", state).stdout.splitlines()
    assert len(by_cell) == 2 and "applied" in by_cell[1]
    # populate's events are 10 to 11 minutes old
    assert len(run("events", "--since", "5m", "--state-dir", state).stdout.splitlines()) == 1
    assert (
        len(run("events", "--since", "2h", "-n", "2", "--state-dir", state).stdout.splitlines())
        == 3
    )
    bad = run("events", "--since", "yesterday", "--state-dir", state)
    assert bad.returncode == 2 and "neither a duration" in bad.stderr


def test_history_shows_a_rejected_commits_message_and_problems(state: Path) -> None:
    store = SqliteStore(state / "cellops.db")
    problem = {"file": "cells/eu-1.yaml", "line": 3, "field": "kind", "message": "unknown kind"}
    store.record_revision(
        RevisionRecord("d" * 40, False, "typo in eu-1\n\nsee ticket", [problem], time.time())
    )
    store.close()
    text = run("history", "--state-dir", state).stdout
    assert "dddddddddddd" in text and "REJECTED" in text
    assert "typo in eu-1" in text and "cells/eu-1.yaml:3: kind: unknown kind" in text
    document = json.loads(run("history", "-o", "json", "--state-dir", state).stdout)
    assert document[0]["rollout"] is None and document[1]["problems"]


def test_status_lists_every_cell_of_the_revision_applied_or_not(
    example_fleet: FleetRepo, tmp_path: Path
) -> None:
    """The controller applied eu-canary only: the other five are listed, with addresses."""
    head = str(example_fleet.repo.head.target)
    store = SqliteStore(tmp_path / "state" / "cellops.db")
    store.set_setting("fleet.current", head)
    for service in ("ledger", "payments"):
        store.set_applied("eu-canary", service, rev=head, hash_="h", depends_on=(), now=time.time())
    store.close()
    where = (example_fleet.path, "--state-dir", tmp_path / "state")
    document = json.loads(run("status", *where, "-o", "json").stdout)
    names = [c["name"] for c in document["cells"]]
    assert names == ["eu-1", "eu-2", "eu-canary", "us-1", "us-2", "us-3"]
    assert all(c["address"] and c["address"].startswith("127.") for c in document["cells"])
    waiting = [c["name"] for c in document["cells"] if c["health"] == "not-applied"]
    assert waiting == ["eu-1", "eu-2", "us-1", "us-2", "us-3"]
    text = run("status", *where).stdout
    for cell in document["cells"]:
        assert f"{cell['name']}" in text and cell["address"] in text


def test_rollout_status_as_json_and_a_halted_rollout_exits_1(state: Path) -> None:
    running = run("rollout", "status", "-o", "json", "--state-dir", state)
    assert running.returncode == 0, running.stderr
    document = json.loads(running.stdout)
    assert document["state"] == "running" and document["plan"][1]["name"] == "rest"
    assert "approv" in document["waiting"]
    store = SqliteStore(state / "cellops.db")
    rollout = store.active_rollout()
    assert rollout is not None
    store.update_rollout(
        rollout.id, time.time(), state=RolloutState.HALTED, reason="cell-0000 unhealthy"
    )
    store.close()
    halted = run("rollout", "status", "--state-dir", state)
    assert halted.returncode == 1
    assert "halted" in halted.stdout and "cell-0000 unhealthy" in halted.stdout


@pytest.mark.slow
def test_rollout_status_watch_follows_the_rollout_until_it_ends(state: Path) -> None:
    watcher = subprocess.Popen(
        [CELLOPS, "rollout", "status", "--watch", "--interval", "0.2s", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        first = [watcher.stdout.readline() for _ in range(4)]  # Rollout, Revision, From, State
        assert "running" in first[3], first
        store = SqliteStore(state / "cellops.db")
        rollout = store.active_rollout()
        assert rollout is not None
        store.update_rollout(rollout.id, time.time(), state=RolloutState.COMPLETED)
        store.close()
        out, err = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    assert "completed" in out.rsplit("Rollout:", 1)[-1]


def test_rollout_status_of_a_commit(state: Path) -> None:
    """--rev: the rollout of that commit; a rejected commit is exit 1 with its problems."""
    of_new = run("rollout", "status", "--rev", NEW[:10], "--state-dir", state)
    assert of_new.returncode == 0 and f"Revision: {NEW}" in of_new.stdout
    rejected = run("rollout", "status", "--rev", BAD, "--state-dir", state)
    assert rejected.returncode == 1
    assert "was rejected" in rejected.stderr and "services/web.yaml:7:" in rejected.stderr
    unseen = run("rollout", "status", "--rev", "f" * 40, "--state-dir", state)
    assert unseen.returncode == 2 and "--watch waits for it" in unseen.stderr
