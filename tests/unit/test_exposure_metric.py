"""The exposure the controller recorded, as others read it: the metric
`cellops_revision_exposure_ratio` at a scrape, the fleet read model (the API) and the
headline of `cellops status`."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cellops.cli.status import _headline
from cellops.controller.exposure import ExposureTracker, current_exposure
from cellops.observe.metrics import ControllerMetrics
from cellops.query.fleet import fleet_summary
from cellops.store.sqlite import SqliteStore
from cellops.tenancy.table import CellRoute, RoutingTable

REV = "c" * 40


def _gauge(metrics: ControllerMetrics) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
        if s.name == "cellops_revision_exposure_ratio"
    }


def test_the_gauge_shows_the_recorded_exposure(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cellops.db")
    metrics = ControllerMetrics(store, tmp_path / "cellops.db")
    try:
        assert _gauge(metrics) == {}  # no routing table yet: no series
        routes = {c: CellRoute("http://127.0.0.1:1") for c in ("canary", "a")}
        table = RoutingTable(
            3, REV, routes, {"qa": "canary", "big": "a"}, ("a",), weights={"big": 3}
        )
        store.set_applied("canary", "api", rev=REV, hash_="new", depends_on=(), now=1.0)
        ExposureTracker(lambda: table).update(store)
        assert current_exposure(store) == 0.25
        assert _gauge(metrics) == {(("revision", REV),): 0.25}
    finally:
        metrics.close()
        store.close()


def test_status_and_the_api_read_the_recorded_exposure(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cellops.db")
    try:
        assert fleet_summary(store, [])["exposure"] is None
        empty = RoutingTable(1, REV, {"a": CellRoute("http://127.0.0.1:1")}, {}, ("a",))
        ExposureTracker(lambda: empty).update(store)  # no tenant listed: none shown
        assert fleet_summary(store, [])["exposure"] is None
        routes = {c: CellRoute("http://127.0.0.1:1") for c in ("canary", "a")}
        table = RoutingTable(1, REV, routes, {"qa": "canary", "t": "a", "u": "a"}, ("a",))
        store.set_applied("canary", "api", rev=REV, hash_="new", depends_on=(), now=1.0)
        ExposureTracker(lambda: table).update(store)
        summary = fleet_summary(store, [])
    finally:
        store.close()
    assert summary["exposure"] == {
        "ratio": 1 / 3,
        "revision": REV,
        "version": 1,
        "cells": ["canary"],
    }
    assert _headline(summary).endswith("; exposure 33.3% (canary)")
