"""The embedded router (`cellops router run`) as a real process in front of real toy cells."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cellops.router.tablefile import write_table
from cellops.tenancy.table import CellRoute, RoutingTable
from tests.routerkit.procs import free_port, get, start_cell, start_router, stop, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def cells() -> Iterator[dict[str, tuple[subprocess.Popen[str], int]]]:
    started = {name: start_cell(name) for name in ("a", "b")}
    yield started
    for proc, _ in started.values():
        stop(proc)


def make_table(cells: dict[str, tuple[subprocess.Popen[str], int]], **kw: object) -> RoutingTable:
    routes = {n: CellRoute(f"http://127.0.0.1:{port}") for n, (_, port) in cells.items()}
    fields: dict[str, object] = {
        "version": 1,
        "revision": "r1",
        "cells": routes,
        "tenants": {"acme": "a", "globex": "b"},
        "ring": tuple(sorted(routes)),
    }
    fields.update(kw)
    return RoutingTable(**fields)  # type: ignore[arg-type]


@pytest.fixture
def router(
    tmp_path: Path, cells: dict[str, tuple[subprocess.Popen[str], int]]
) -> Iterator[tuple[Path, int]]:
    table = tmp_path / "routing.json"
    write_table(table, make_table(cells))
    proc, port = start_router(table, "--timeout", "3")
    yield table, port
    stop(proc)


def cell_of(port: int, tenant: str) -> str:
    status, body, _ = get(port, "/x", {"X-Tenant-Id": tenant})
    assert status == 200, body
    return body.split()[0]


def status(port: int) -> dict[str, object]:
    return dict(json.loads(get(port, "/.cellops/router")[1]))


def version(port: int) -> int:
    return int(status(port)["version"])  # type: ignore[call-overload]


def refused(port: int) -> str | None:
    return status(port)["refused"]  # type: ignore[return-value]


def test_routes_by_header_and_unknown_tenants_follow_the_hash(router: tuple[Path, int]) -> None:
    _, port = router
    assert cell_of(port, "acme") == "a" and cell_of(port, "globex") == "b"
    table = make_table({"a": (None, 1), "b": (None, 1)})  # type: ignore[dict-item]
    for tenant in ("t1", "t2", "t3", "t4", "t5"):
        assert cell_of(port, tenant) == table.lookup(tenant)


@pytest.mark.parametrize(
    "case",
    [
        ("host", "/x", "acme.example.com", "a /x"),
        ("path", "/globex/orders/1", "localhost", "b /orders/1"),
    ],
)
def test_routes_by_host_or_path_prefix(
    tmp_path: Path, cells: dict[str, tuple[subprocess.Popen[str], int]], case: tuple[str, ...]
) -> None:
    key, path, host, seen = case
    table = tmp_path / "routing.json"
    write_table(table, make_table(cells, key=key))
    proc, port = start_router(table)
    try:
        status, body, _ = get(port, path, {"Host": host})
        assert (status, " ".join(body.split()[:2])) == (200, seen)
    finally:
        stop(proc)


def test_bad_requests_are_refused(router: tuple[Path, int]) -> None:
    _, port = router
    status, body, _ = get(port, "/x")
    assert status == 400 and "X-Tenant-Id" in body
    assert get(port, "/x", {"X-Tenant-Id": "../etc"})[0] == 400
    assert get(port, "/x", {"X-Tenant-Id": "acme", "X-Big": "v" * 20_000})[0] in (400, 431)
    assert cell_of(port, "acme") == "a"  # and it still serves


def test_a_malformed_or_missing_table_keeps_the_last_good_one(router: tuple[Path, int]) -> None:
    table, port = router
    for text, why in [
        ('{"format": 1, "version": 2, "cells": {}, "tenants": {"acme": "zz"}', "not JSON"),
        ('{"format": 1, "version": 2, "cells": {}, "tenants": {}, "ring": ["zz"]}', "unknown"),
    ]:
        table.write_text(text)
        wait_for(lambda why=why: why in (refused(port) or ""), f"refusal: {why}")
        assert cell_of(port, "acme") == "a" and version(port) == 1
    os.unlink(table)  # the controller and its files gone: static stability
    wait_for(lambda: "cannot read" in (refused(port) or ""), "the table's removal")
    assert cell_of(port, "acme") == "a" and version(port) == 1


@pytest.mark.parametrize("change", ["move", "drain"])
def test_a_move_or_a_drain_under_load_fails_no_request(
    router: tuple[Path, int], cells: dict[str, tuple[subprocess.Popen[str], int]], change: str
) -> None:
    table, port = router
    tenants = ["acme", *(f"t{i}" for i in range(20))]  # t*: unlisted, hashed over a and b
    failures: list[str] = []
    last: dict[str, str] = {}
    done = threading.Event()

    def load(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for n in itertools.count(offset):
            if done.is_set():
                return
            tenant = tenants[n % len(tenants)]
            conn.request("GET", "/x", headers={"X-Tenant-Id": tenant})
            response = conn.getresponse()
            body = response.read().decode()
            if response.status != 200:
                failures.append(body)
            last[tenant] = body.split()[0]

    workers = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    before = make_table(cells)
    if change == "move":
        after, moved = replace(before, version=2, tenants={"acme": "b"}), ["acme"]
    else:  # a drains: every tenant of a, listed or hashed, is placed on b
        routes = {**before.cells, "a": CellRoute(before.cells["a"].url, "draining")}
        placed = dict.fromkeys(tenants, "b")
        after, moved = (
            replace(before, version=2, cells=routes, tenants=placed, ring=("b",)),
            tenants,
        )
    try:
        wait_for(lambda: len(last) == len(tenants), "every tenant served before the change")
        write_table(table, after)
        wait_for(lambda: all(last[t] == "b" for t in moved), "every move")
        last.clear()
        wait_for(lambda: len(last) == len(tenants), "every tenant served after the change")
    finally:
        done.set()
        for worker in workers:
            worker.join(timeout=60)
    assert failures == [] and version(port) == 2
    assert all(last[t] == "b" for t in moved)


def test_a_hung_cell_costs_only_its_own_tenants(
    router: tuple[Path, int], cells: dict[str, tuple[subprocess.Popen[str], int]]
) -> None:
    _, port = router
    hung, _ = cells["b"]
    os.kill(hung.pid, signal.SIGSTOP)
    try:
        answers = [get(port, "/x", {"X-Tenant-Id": "globex"}) for _ in range(5)]
        assert {status for status, _, _ in answers} == {503}
        assert all(headers.get("retry-after") == "5" for _, _, headers in answers)
        assert "breaker open" in answers[-1][1]  # later requests are refused at once
        assert all(cell_of(port, "acme") == "a" for _ in range(20))  # no retry into a
    finally:
        os.kill(hung.pid, signal.SIGCONT)


def test_a_move_waits_until_the_new_cell_answers(
    router: tuple[Path, int], cells: dict[str, tuple[subprocess.Popen[str], int]]
) -> None:
    table, port = router
    later = free_port()
    routes = {**make_table(cells).cells, "c": CellRoute(f"http://127.0.0.1:{later}")}
    write_table(table, replace(make_table(cells), version=2, cells=routes, tenants={"acme": "c"}))
    wait_for(lambda: version(port) == 2, "the new table")
    assert status(port)["held"] == 1
    assert cell_of(port, "acme") == "a"  # c is not up: acme stays where it was
    proc, _ = start_cell("c", later)
    try:
        wait_for(lambda: cell_of(port, "acme") == "c", "the move, once c answers")
        assert status(port)["held"] == 0
    finally:
        stop(proc)
