"""The controller as users run it: `cellops up` as a real process over a real fleet repo of
local cells; pushes through its webhook, rejected revisions, a newer commit superseding a
rollout, `cellops rollout pause|resume|abort`, and `status`, `history`, `logs`.

Each test builds its own small fleet (a canary and two more cells, one service) with cell
names of its own, so no two tests ever share a cell address.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cellops.store.records import CellStep, RolloutState
from tests.integration.controller_harness import (
    Fleet,
    ServiceDef,
    applied_order,
    count,
    plan_cells,
    wait_for,
)

pytestmark = pytest.mark.slow

WEB = ServiceDef("web", 18090)
COMPLETED = RolloutState.COMPLETED
MakeFleet = Callable[..., Fleet]


@pytest.fixture
def make_fleet(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MakeFleet]:
    """Build fleets for one test; `cellops down` for each at the end, and no leftovers."""
    fleets: list[Fleet] = []
    # cell names of its own per test and per run: two copies of the suite never share
    # an address (a derived address hashes the fleet's name, this prefix)
    tag = hashlib.sha256(f"{request.node.name} {tmp_path}".encode()).hexdigest()[:5]

    def make(**options: object) -> Fleet:
        fleet = Fleet(
            tmp_path / f"fleet{len(fleets)}",
            f"c{tag}{len(fleets)}",
            [WEB],
            regions=("a", "b"),
            **options,  # type: ignore[arg-type]
        )
        fleets.append(fleet)
        return fleet

    yield make
    leftovers: dict[int, str] = {}
    for fleet in fleets:
        leftovers.update(fleet.down())
    assert not leftovers, f"processes outlived `cellops down`: {leftovers}"


def started(fleet: Fleet, **options: object) -> Fleet:
    """Start the controller and wait for the first commit to reach every cell."""
    fleet.start(**options)  # type: ignore[arg-type]
    fleet.wait_rollout(fleet.head, COMPLETED)
    fleet.wait_serving("web", "v1")
    return fleet


def post(port: int, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhook",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_rollout_in_waves(fleet: Fleet, revision: str) -> None:
    """Completed; canary first; every cell given the revision once, wave after wave."""
    rollout = fleet.rollout_of(revision)
    assert rollout is not None and rollout.state is COMPLETED
    waves = plan_cells(rollout)
    planned = [c for wave in waves for c in wave]
    assert waves[0] == [f"{fleet.prefix}-canary"], waves
    events = fleet.events(rollout=rollout.id)
    assert applied_order(events) == planned, fleet.describe()
    assert count(events, "applied") == collections.Counter(list(fleet.cells)), fleet.describe()
    done = [e.id for e in events if e.kind == "wave-done"]
    applied = {e.cell: e.id for e in events if e.kind == "applied"}
    for index, cells in enumerate(waves[1:]):
        assert all(applied[c] > done[index] for c in cells), fleet.describe()
    for cell, row in fleet.ledger("web").items():
        assert row.applied_rev == row.good_rev == revision, (cell, row)


# -- the push webhook ---------------------------------------------------------------------
def test_webhook_push_is_authenticated_and_picked_up_at_once(make_fleet: MakeFleet) -> None:
    secret = secrets.token_hex(16)
    # a 60s poll: after the first look at start, only a push explains a new rollout
    fleet = started(make_fleet(), poll="60s", webhook_secret=secret)
    port = int(fleet.record()["webhook"])
    first = fleet.head
    revisions = len(fleet.store.revisions())
    mark = fleet.last_event_id()

    v2 = fleet.release("web", "v2")
    body = json.dumps({"ref": "refs/heads/main", "after": v2}).encode()
    refused = {
        "wrong secret": {"X-Hub-Signature-256": github_signature("not-the-secret", body)},
        "other body": {"X-Hub-Signature-256": github_signature(secret, body + b" ")},
        "not hex": {"X-Hub-Signature-256": "sha256=zz"},
        "wrong token": {"X-Gitlab-Token": secret + "x"},
        "no signature": {},
    }
    for name, headers in refused.items():
        assert post(port, body, headers) == 401, name
    time.sleep(1.0)  # five controller passes
    assert fleet.store.revision(v2) is None
    assert len(fleet.store.revisions()) == revisions
    assert fleet.rollout_of(v2) is None
    assert fleet.store.setting("source.last_seen") == first
    assert fleet.events(after=mark) == []
    fleet.wait_serving("web", "v1")

    # GitHub: HMAC-SHA256 of the body
    pushed = time.time()
    signed = {"X-Hub-Signature-256": github_signature(secret, body), "X-GitHub-Event": "push"}
    assert post(port, body, signed) == 202
    fleet.wait_rollout(v2, COMPLETED, timeout=30)
    record = fleet.store.revision(v2)
    assert record is not None and record.accepted
    assert record.seen_at - pushed < 5, "picked up by the push, not by the 60s poll"
    check_rollout_in_waves(fleet, v2)
    fleet.wait_serving("web", "v2")

    # GitLab: the shared token
    v3 = fleet.release("web", "v3")
    pushed = time.time()
    assert post(port, b"{}", {"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook"}) == 202
    fleet.wait_rollout(v3, COMPLETED, timeout=30)
    record = fleet.store.revision(v3)
    assert record is not None and record.seen_at - pushed < 5
    fleet.wait_serving("web", "v3")


# -- a malformed revision -------------------------------------------------------------------
def test_malformed_revision_is_rejected_and_changes_nothing(make_fleet: MakeFleet) -> None:
    fleet = started(make_fleet())
    good = fleet.head
    canary = f"{fleet.prefix}-canary"
    before = {
        c: (fleet.desired_file(c).read_bytes(), fleet.desired_file(c).stat().st_mtime_ns)
        for c in fleet.cells
    }
    pids = fleet.replica_pids()
    rollouts = len(fleet.store.rollouts(limit=1000))
    mark = fleet.last_event_id()

    # a typo in a cell file, committed together with a new app version
    fleet.repo.replace(f"cells/{canary}.yaml", "maxTenants: 10", "maxTenant: 10")
    fleet.write_app("web", "v2")
    bad = fleet.commit("typo and web v2")
    record = wait_for("the revision to be judged", lambda: fleet.store.revision(bad), timeout=15)
    assert not record.accepted
    assert any(
        p["file"] == f"cells/{canary}.yaml"
        and p["field"] == "spec.capacity.maxTenant"
        and "unknown field" in str(p["message"])
        and p["severity"] == "error"
        for p in record.problems
    ), record.problems
    assert fleet.store.revisions()[0].id == bad
    rejected = fleet.events(after=mark, kind="revision-rejected")
    assert [e.revision for e in rejected] == [bad], rejected

    time.sleep(1.5)  # several passes, and a drift check or two
    assert fleet.store.setting("fleet.current") == good
    assert len(fleet.store.rollouts(limit=1000)) == rollouts
    assert fleet.rollout_of(bad) is None
    after = {
        c: (fleet.desired_file(c).read_bytes(), fleet.desired_file(c).stat().st_mtime_ns)
        for c in fleet.cells
    }
    assert after == before
    touched = [e for e in fleet.events(after=mark) if e.kind != "revision-rejected"]
    assert not touched, touched
    assert fleet.replica_pids() == pids
    fleet.wait_serving("web", "v1")

    # the fix rolls out normally
    fleet.repo.replace(f"cells/{canary}.yaml", "maxTenant: 10", "maxTenants: 10")
    fixed = fleet.commit("fix the typo")
    fleet.wait_rollout(fixed, COMPLETED)
    check_rollout_in_waves(fleet, fixed)
    fleet.wait_serving("web", "v2")


# -- a newer commit supersedes a running rollout -------------------------------------------
def test_newer_commit_supersedes_the_running_rollout(make_fleet: MakeFleet) -> None:
    fleet = started(make_fleet())
    canary = f"{fleet.prefix}-canary"
    # v2 bakes 3s on the canary: time enough for v3 to arrive while it is in its first wave
    fleet.write_fleet(canary_bake="3s", rest_bake="200ms", progress_deadline="20s")
    v2 = fleet.release("web", "v2")
    wait_for(
        "the v2 canary to be healthy (and baking)",
        lambda: (r := fleet.rollout_of(v2)) and fleet.events(rollout=r.id, kind="healthy"),
        timeout=20,
    )
    early = fleet.rollout_of(v2)
    assert early is not None and early.wave == 0 and early.state is RolloutState.RUNNING
    fleet.wait_serving("web", "v2", cells=[canary])

    fleet.write_fleet(canary_bake="300ms", rest_bake="200ms", progress_deadline="20s")
    v3 = fleet.release("web", "v3")
    fleet.wait_rollout(v3, COMPLETED)

    old = fleet.rollout_of(v2)
    assert old is not None and old.state is RolloutState.SUPERSEDED
    assert v3[:12] in old.reason, old.reason
    old_events = fleet.events(rollout=old.id)
    assert applied_order(old_events) == [canary], fleet.describe()
    assert [e.kind for e in old_events].count("rollout-superseded") == 1
    assert not [e for e in old_events if e.kind in ("wave-done", "rollout-completed")]
    steps = fleet.store.cell_steps(old.id)
    assert all(s is CellStep.SKIPPED for c, (_, s, _) in steps.items() if c != canary), steps

    check_rollout_in_waves(fleet, v3)  # the canary first again, then the rest
    superseded_at = fleet.events(rollout=old.id, kind="rollout-superseded")[0].id
    new = fleet.rollout_of(v3)
    assert new is not None
    assert fleet.events(rollout=new.id, kind="rollout-started")[0].id > superseded_at
    fleet.wait_serving("web", "v3")


# -- steering a rollout ----------------------------------------------------------------------
def test_rollout_pause_resume_and_abort(make_fleet: MakeFleet) -> None:
    fleet = started(make_fleet())
    canary = f"{fleet.prefix}-canary"
    others = [c for c in fleet.cells if c != canary]
    steer = ("--state-dir", fleet.state)

    nothing = fleet.cli("rollout", "pause", fleet.repo.path, *steer)
    assert nothing.returncode == 2 and "no rollout is running" in nothing.stderr

    fleet.write_fleet(canary_bake="3s", rest_bake="200ms", progress_deadline="20s")
    v2 = fleet.release("web", "v2")

    def baking(revision: str) -> Callable[[], object]:
        def check() -> object:
            rollout = fleet.rollout_of(revision)
            return rollout is not None and fleet.events(rollout=rollout.id, kind="healthy")

        return check

    wait_for("the v2 canary to bake", baking(v2), timeout=20)
    paused = fleet.cli("rollout", "pause", fleet.repo.path, *steer)
    assert paused.returncode == 0, paused.stderr
    assert "pause recorded" in paused.stdout
    rollout = fleet.rollout_of(v2)
    assert rollout is not None and rollout.paused and rollout.wave == 0
    mark = fleet.last_event_id()
    # paused past the end of the bake: the rollout does not move
    time.sleep(3.0 + 1.5)  # the canary's bake, and more
    frozen = fleet.rollout_of(v2)
    assert frozen is not None and frozen.state is RolloutState.RUNNING and frozen.paused
    assert frozen.wave == 0, fleet.describe()
    assert fleet.events(after=mark) == [], fleet.describe()
    for cell in others:
        assert fleet.get(cell, "web") == "v1", cell
    shown = fleet.cli("rollout", "status", fleet.repo.path, *steer)
    assert "paused" in shown.stdout, shown.stdout

    resumed = fleet.cli("rollout", "resume", fleet.repo.path, *steer)
    assert resumed.returncode == 0 and "resume recorded" in resumed.stdout
    fleet.wait_rollout(v2, COMPLETED)
    check_rollout_in_waves(fleet, v2)
    fleet.wait_serving("web", "v2")
    kinds = [e.kind for e in fleet.events(rollout=rollout.id)]
    assert kinds.count("rollout-pause") == 1 and kinds.count("rollout-resume") == 1

    # abort: the canary keeps what it has, no other cell gets the revision
    v3 = fleet.release("web", "v3")
    wait_for("the v3 canary to bake", baking(v3), timeout=20)
    aborted = fleet.cli("rollout", "abort", fleet.repo.path, *steer)
    assert aborted.returncode == 0 and "abort recorded" in aborted.stdout
    third = fleet.rollout_of(v3)
    assert third is not None and third.state is RolloutState.ABORTED
    assert third.reason == "aborted by an operator"
    time.sleep(3.0 + 1.5)
    ended = fleet.rollout_of(v3)
    assert ended is not None and ended.state is RolloutState.ABORTED and ended.wave == 0
    events = fleet.events(rollout=third.id)
    assert applied_order(events) == [canary], fleet.describe()
    assert not [e for e in events if e.kind in ("wave-done", "rollout-completed")]
    fleet.wait_serving("web", "v3", cells=[canary])
    fleet.wait_serving("web", "v2", cells=others)
    time.sleep(0.5)
    fleet.wait_serving("web", "v3", cells=[canary])  # kept, not reverted by drift repair
    again = fleet.cli("rollout", "resume", fleet.repo.path, *steer)
    assert again.returncode == 2 and "no rollout is running" in again.stderr


# -- what the CLI shows -----------------------------------------------------------------------
def test_status_history_and_logs_show_what_happened(make_fleet: MakeFleet) -> None:
    fleet = started(make_fleet())
    canary = f"{fleet.prefix}-canary"
    v1 = fleet.head
    v2 = fleet.release("web", "v2")
    fleet.wait_rollout(v2, COMPLETED)
    fleet.wait_serving("web", "v2")
    fleet.repo.replace(f"cells/{canary}.yaml", "kind: Cell", "kind: Cel")
    bad = fleet.commit("typo")
    wait_for("the typo to be rejected", lambda: fleet.store.revision(bad), timeout=15)
    where = (fleet.repo.path, "--state-dir", fleet.state)

    status = fleet.cli("status", *where, "-o", "json")
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["current"] == v2
    rows = {(r["cell"], r["service"]): r for r in document["services"]}
    assert set(rows) == {(c, "web") for c in fleet.cells}
    for row in rows.values():
        assert (row["revision"], row["good"], row["health"]) == (v2, v2, "healthy"), row
        assert (row["ready"], row["desired"]) == (1, 1), row
    text = fleet.cli("status", *where)
    assert text.returncode == 0 and f"fleet at {v2[:12]}" in text.stdout
    assert all(cell in text.stdout for cell in fleet.cells), text.stdout

    history = fleet.cli("history", *where, "-o", "json")
    assert history.returncode == 0, history.stderr
    entries = json.loads(history.stdout)
    assert [e["revision"] for e in entries] == [bad, v2, v1]
    assert [e["accepted"] for e in entries] == [False, True, True]
    assert entries[0]["problems"] and entries[0]["rollout"] is None
    assert entries[0]["problems"][0]["file"] == f"cells/{canary}.yaml"
    assert entries[1]["rollout"]["state"] == "completed" and entries[1]["message"] == "web v2"
    assert entries[2]["rollout"]["state"] == "completed"
    table = fleet.cli("history", *where)
    assert f"{bad[:12]}" in table.stdout and "REJECTED" in table.stdout, table.stdout
    assert f"cells/{canary}.yaml:" in table.stdout, table.stdout  # the problem itself

    logs = fleet.cli("logs", canary, "web", "--repo", fleet.repo.path, "--state-dir", fleet.state)
    assert logs.returncode == 0, logs.stderr
    assert f"web v2 listening on {fleet.address(canary)}" in logs.stdout, logs.stdout
    [pod] = fleet.pods(canary, "web")
    assert str(pod["id"]) in logs.stdout
    missing = fleet.cli(
        "logs", canary, "nope", "--repo", fleet.repo.path, "--state-dir", fleet.state
    )
    assert missing.returncode == 2 and "no logs for nope" in missing.stderr
