"""The metrics: state read from a real store at scrape time, histograms fed by the
store's events, the API request timer, and the text `promtool` accepts."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from cellops.backends.base import CellObservation, ServiceObservation
from cellops.health import Health
from cellops.observe.http import RequestTimer
from cellops.observe.metrics import ControllerMetrics
from cellops.store.planrecord import PlannedCellRecord, PlanRecord, PolicyRecord, WaveRecord
from cellops.store.records import Phase, RevisionRecord
from cellops.store.sqlite import SqliteStore

A, B = "a" * 40, "b" * 40


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def tmp_path(tmp_path: Path) -> Path:
    """A folder whose name needs escaping in a SQLite URI."""
    odd = tmp_path / "state #1?"
    odd.mkdir()
    return odd


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "cellops.db")
    for cell in ("c1", "c2"):
        for service in ("api", "web"):
            store.set_applied(cell, service, rev=A, hash_="h", depends_on=(), now=1.0)
    store.set_healthy("c1", "api", A, 2.0)
    store.set_healthy("c1", "web", A, 2.0)
    store.set_healthy("c2", "api", A, 2.0)  # c2/web: not (yet) healthy at A
    store.record_revision(RevisionRecord(A, True, "good", [], 10.0, 4.0))
    store.record_revision(RevisionRecord(B, False, "typo", [], 11.0))
    store.set_setting("fleet.current", A)
    waves = tuple(
        WaveRecord(name=c, batch=1, batches=1, canary=False, bake_seconds=1,
                   cells=(PlannedCellRecord(c, (("web", "configured"),)),))
        for c in ("c1", "c2")
    )  # fmt: skip
    rollout = store.create_rollout(A, None, PlanRecord(waves, PolicyRecord()), 12.0)
    store.update_rollout(rollout, 13.0, phase=Phase.BAKE)
    store.add_event(14.0, "drift", "c1/web: replica restarted", cell="c1", service="web")
    store.add_event(15.0, "rolled-back", "c2 rolled back", cell="c2", rollout=rollout)
    yield store
    store.close()


def test_a_scrape_reads_the_state_from_the_store(store: SqliteStore, tmp_path: Path) -> None:
    metrics = ControllerMetrics(store, tmp_path / "cellops.db")
    try:
        got = _samples(metrics.exposition().decode())
    finally:
        metrics.close()
    assert got[("cellops_cell_healthy", (("cell", "c1"),))] == 1.0
    assert got[("cellops_cell_healthy", (("cell", "c2"),))] == 0.0
    assert got[("cellops_cell_unhealthy_services", (("cell", "c2"),))] == 1.0
    assert got[("cellops_service_healthy_cells", (("service", "web"),))] == 1.0
    assert got[("cellops_service_cells", (("service", "web"),))] == 2.0
    assert got[("cellops_cell_revision_info", (("cell", "c1"), ("revision", A)))] == 1.0
    assert got[("cellops_revisions_total", (("verdict", "accepted"),))] == 1.0
    assert got[("cellops_revisions_total", (("verdict", "rejected"),))] == 1.0
    assert got[("cellops_fleet_revision_info", (("revision", A),))] == 1.0
    assert got[("cellops_rollout_phase", (("phase", "bake"),))] == 1.0
    assert got[("cellops_rollout_phase", (("phase", "idle"),))] == 0.0
    assert got[("cellops_rollout_waves", ())] == 2.0
    assert got[("cellops_drift_repairs_total", ())] == 1.0
    assert got[("cellops_rollbacks_total", (("result", "done"),))] == 1.0


def test_health_as_the_cells_report_it_when_observed(store: SqliteStore, tmp_path: Path) -> None:
    def observe(cell: str) -> CellObservation:
        web = ServiceObservation(
            "web", "h", Health.DEGRADED if cell == "c1" else Health.HEALTHY, 0, 1
        )
        api = ServiceObservation("api", "h", Health.HEALTHY, 1, 1)
        return CellObservation(cell, True, {"web": web, "api": api})

    metrics = ControllerMetrics(store, tmp_path / "cellops.db", observe)
    try:
        got = _samples(metrics.exposition().decode())
    finally:
        metrics.close()
    assert got[("cellops_cell_healthy", (("cell", "c1"),))] == 0.0  # web degraded there now
    assert got[("cellops_cell_healthy", (("cell", "c2"),))] == 1.0


def test_histograms_follow_the_events(store: SqliteStore, tmp_path: Path) -> None:
    metrics = ControllerMetrics(store, tmp_path / "cellops.db")
    try:
        rollout = store.rollouts(limit=1)[0].id
        store.add_event(64.0, "wave-done", "wave canary done", revision=A, rollout=rollout)
        store.add_event(70.0, "wave-done", "wave rest done", revision=A, rollout=rollout)
        store.add_event(104.0, "rollout-completed", "done", revision=A, rollout=rollout)
        store.add_event(200.0, "cell-failed", "c2: crash", cell="c2", rollout=rollout)
        store.add_event(230.0, "recovered", "c2 back", cell="c2", rollout=rollout)
        metrics.follow()
        metrics.reconcile_pass.observe(0.02)
        got = _samples(metrics.exposition().decode())
    finally:
        metrics.close()
    # the commit's time is 4.0: canary done 60 s later, the fleet 100 s later
    assert got[("cellops_commit_to_canary_healthy_seconds_count", ())] == 1.0
    assert got[("cellops_commit_to_canary_healthy_seconds_sum", ())] == 60.0
    assert got[("cellops_commit_to_fleet_complete_seconds_sum", ())] == 100.0
    assert got[("cellops_rollback_duration_seconds_sum", ())] == 30.0
    assert got[("cellops_reconcile_pass_duration_seconds_count", ())] == 1.0


def test_api_requests_are_timed_by_route_template(store: SqliteStore, tmp_path: Path) -> None:
    metrics = ControllerMetrics(store, tmp_path / "cellops.db")

    async def cell(_: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = RequestTimer(Starlette(routes=[Route("/api/v1/cells/{cell}", cell)]), metrics)

    async def call(path: str) -> int:
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
        await app(scope, receive, send)  # type: ignore[arg-type]
        return int(sent[0]["status"])  # type: ignore[call-overload]

    try:
        assert asyncio.run(call("/api/v1/cells/eu-1")) == 200
        assert asyncio.run(call("/nothing/here")) == 404
        got = _samples(metrics.exposition().decode())
    finally:
        metrics.close()
    labels = (("code", "200"), ("method", "GET"), ("route", "/api/v1/cells/{cell}"))
    assert got[("cellops_api_request_duration_seconds_count", labels)] == 1.0
    other = (("code", "404"), ("method", "GET"), ("route", "other"))
    assert got[("cellops_api_request_duration_seconds_count", other)] == 1.0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_scrape(store: SqliteStore, tmp_path: Path) -> None:
    metrics = ControllerMetrics(store, tmp_path / "cellops.db")
    try:
        text = metrics.exposition()
    finally:
        metrics.close()
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_write_between_scrapes_is_seen(store: SqliteStore, tmp_path: Path) -> None:
    metrics = ControllerMetrics(store, tmp_path / "cellops.db")
    try:
        before = _samples(metrics.exposition().decode())
        again = _samples(metrics.exposition().decode())  # unchanged store: the same
        store.set_healthy("c2", "web", A, 3.0)
        store.add_event(16.0, "drift", "c2/web: replica restarted", cell="c2", service="web")
        after = _samples(metrics.exposition().decode())
    finally:
        metrics.close()
    assert before == again
    assert before[("cellops_cell_healthy", (("cell", "c2"),))] == 0.0
    assert after[("cellops_cell_healthy", (("cell", "c2"),))] == 1.0
    assert after[("cellops_drift_repairs_total", ())] == 2.0
