"""What may stand in a routing table (cell URLs, names, ids, header, revision) and what the
engine exports make of it: nothing from a table file reaches an HAProxy or nginx config
unchecked, and no entry point is reached at another place than it says."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cellops.router.engines import EngineError, haproxy_config, nginx_config, nginx_server
from cellops.tenancy.checks import cell_url_problem
from cellops.tenancy.table import CellRoute, RoutingTable, TableError, parse_table
from tests.routerkit.procs import CELLOPS

GOOD = {
    "format": 1,
    "version": 3,
    "revision": "0123abcd",
    "cells": {"a": {"url": "http://127.0.0.1:8080", "state": "active"}},
    "tenants": {"acme": "a"},
    "ring": ["a"],
    "weights": {"acme": 5},
}


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "https://lb.example", "http://lb.example:80/", "http://[::1]:81"],
)
def test_an_entry_point_may_be_http_or_https_to_a_host(url: str) -> None:
    assert cell_url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("lb.example:80", "scheme"),
        ("http://admin:secret@lb.example/", "credentials"),
        ("http://lb.example/?x=1", "query"),
        ("http://lb.example/#top", "fragment"),
        ("http://lb.example/\nserver evil 10.0.0.1:80", "control"),
        ("http://lb.example/ a", "spaces"),
        ("http://lb.exämple/", "non-ASCII"),
        ("http://:80/", "no host"),
        ("http://lb.example:0/", "port 0"),
        ("http://lb.example:99999/", "not a URL"),
        ("http://lb.example/%[path]", "path with characters"),
        ("http://lb.example/" + "a" * 2100, "longer"),
    ],
)
def test_an_entry_point_that_is_no_plain_url_is_refused(url: str, why: str) -> None:
    problem = cell_url_problem(url)
    assert problem is not None and why in problem


def test_a_table_cellops_writes_parses_with_weights_of_tenants_it_does_not_list() -> None:
    """A weighted tenant on a cell without a route (a Kubernetes cell with no entry point)
    is not listed, but keeps its weight: routers must not refuse the controller's table."""
    routes = {"a": CellRoute("http://127.0.0.1:1")}
    table = RoutingTable(1, "r", routes, {"acme": "a"}, ("a",), weights={"bigco": 20})
    assert parse_table(table.to_json()) == table


def test_a_good_table_parses_with_its_weights() -> None:
    table = parse_table(json.dumps(GOOD).encode())
    assert table.weights == {"acme": 5} and table.revision == "0123abcd"
    assert parse_table(table.to_json()) == table


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"header": "X-Tenant-Id)\nserver evil"}, "header"),
        ({"revision": "abc\nlisten evil"}, "revision"),
        ({"key": ["header"]}, "key"),
        ({"tenants": {"acme corp": "a"}}, "not a tenant id"),
        ({"tenants": {"acme": "a"}, "cells": {"A;": {"url": "http://h:1"}}}, "not a cell name"),
        ({"cells": {"a": {"url": "http://h:1/\n}"}}}, "cells.a.url"),
        ({"cells": {"a": {"url": "http://h:1", "state": "maybe"}}}, "cells.a.state"),
        ({"weights": {"acme": "5"}}, "weights.acme"),
        ({"weights": {"no body": 2}}, "not a tenant id"),
        ({"weights": []}, "weights"),
    ],
)
def test_a_table_file_with_unsafe_values_is_refused_whole(
    change: dict[str, object], why: str
) -> None:
    with pytest.raises(TableError, match=why):
        parse_table(json.dumps({**GOOD, **change}).encode())


@pytest.mark.parametrize(
    ("change", "why"),
    [  # `$` matched before a final newline: each of these passed and reached a config
        ({"tenants": {"acme\n": "a"}, "weights": {}}, "not a tenant id"),
        ({"cells": {"a\n": {"url": "http://h:1"}}, "tenants": {}, "ring": []}, "cell name"),
        ({"header": "X-Tenant-Id\n"}, "header"),
        ({"revision": "abc\n"}, "revision"),
    ],
)
def test_a_value_ending_in_a_newline_is_refused(change: dict[str, object], why: str) -> None:
    with pytest.raises(TableError, match=why):
        parse_table(json.dumps({**GOOD, **change}).encode())


def test_a_tenant_id_ending_in_a_newline_is_refused_by_the_spec() -> None:
    from pydantic import ValidationError

    from cellops.spec.tenants import Tenant

    with pytest.raises(ValidationError, match="not a tenant id"):
        Tenant.model_validate({"id": "acme\n"})


@pytest.mark.parametrize(
    ("cells", "ring", "why"),
    [
        ({"a": "active", "q": "quarantined"}, ["a", "q"], "'q' is quarantined"),
        ({"a": "active", "d": "draining"}, ["d"], "'d' is draining"),
        ({"a": "active"}, ["a", "a"], "more than once"),
    ],
)
def test_a_ring_of_cells_that_take_no_new_tenants_is_refused(
    cells: dict[str, str], ring: list[str], why: str
) -> None:
    """The router hashed unlisted tenants onto such a cell (a 503 for a quarantined one)
    and the HAProxy and nginx exports sent them to it; a doubled cell broke HAProxy's
    config (two servers of one name)."""
    routes = {n: {"url": "http://h:1", "state": s} for n, s in cells.items()}
    with pytest.raises(TableError, match=why):
        parse_table(json.dumps({**GOOD, "cells": routes, "ring": ring}).encode())


def table(*urls: str, header: str = "X-Tenant-Id") -> RoutingTable:
    cells = {f"c{i}": CellRoute(url) for i, url in enumerate(urls)}
    return RoutingTable(1, "r", cells, {"acme": "c0"}, tuple(cells), header=header)


def test_haproxy_hashes_unlisted_tenants_by_the_tables_own_header() -> None:
    config = haproxy_config(table("http://h:1", header="X-Customer"), ":80", "m", "s")
    assert "set-var(txn.tenant) req.fhdr(X-Customer)" in config
    assert "balance hash var(txn.tenant)" in config and "X-Tenant-Id" not in config


def test_haproxy_speaks_tls_to_an_https_cell_and_checks_its_certificate() -> None:
    config = haproxy_config(table("https://cell.example"), ":80", "m", "s")
    assert "server c0 cell.example:443 maxconn 256 ssl verify required" in config
    assert "sni str(cell.example)" in config


@pytest.mark.parametrize("url", ["http://lb.example/app", "https://lb.example/v1/"])
def test_an_entry_point_with_a_path_is_refused_by_both_engines(url: str) -> None:
    with pytest.raises(EngineError, match="has a path"):
        haproxy_config(table(url), ":80", "m", "s")
    with pytest.raises(EngineError, match="has a path"):
        nginx_config(table(url))


def test_nginx_refuses_an_https_cell_it_would_speak_plain_http_to() -> None:
    with pytest.raises(EngineError, match="https"):
        nginx_config(table("https://cell.example"))


def test_nginx_takes_the_tenant_segment_off_the_path_only_with_the_path_key() -> None:
    assert "rewrite ^/[^/]+/?(.*)$ /$1 break;" in nginx_server(":80", key="path")
    assert "rewrite" not in nginx_server(":80")


def test_a_refused_export_writes_no_file(tmp_path: Path) -> None:
    path, out = tmp_path / "routing.json", tmp_path / "out"
    path.write_bytes(table("http://lb.example/app").to_json())
    done = subprocess.run(
        [str(CELLOPS), "router", "export", "-f", "haproxy", "--table", str(path), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and "has a path" in done.stderr
    assert not out.exists()
