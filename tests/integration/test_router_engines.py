"""HAProxy and nginx, configured by `cellops router export`, as real servers in front of
real toy cells; HAProxy's map changed through its runtime API without a reload."""

from __future__ import annotations

import http.client
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cellops.router.tablefile import write_table
from cellops.tenancy.table import CellRoute, RoutingTable
from tests.routerkit.procs import CELLOPS, free_port, get, listening, start_cell, stop, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("haproxy") and shutil.which("nginx")),
        reason="needs haproxy and nginx (apt-get install haproxy nginx; .ci/run does)",
    ),
]
Cells = dict[str, tuple[subprocess.Popen[str], int]]


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A short folder in place of pytest's: HAProxy refuses an admin socket path over 97
    characters, and pytest's (its run number, xdist's worker folder, the test's name) grew
    past that on a machine that had run the suite a few hundred times."""
    folder = Path(tempfile.mkdtemp(prefix="cellops-engines-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def cells() -> Iterator[Cells]:
    started = {name: start_cell(name) for name in ("a", "b")}
    yield started
    for proc, _ in started.values():
        stop(proc)


def table_of(cells: Cells, tenants: dict[str, str], version: int = 1) -> RoutingTable:
    routes = {n: CellRoute(f"http://127.0.0.1:{port}") for n, (_, port) in cells.items()}
    return RoutingTable(version, "r1", routes, tenants, tuple(sorted(routes)))


def export(table: Path, fmt: str, out: Path, port: int) -> None:
    subprocess.run(
        [
            *(str(CELLOPS), "router", "export", "--format", fmt, "--table", str(table)),
            *("--out", str(out), "--listen", f"127.0.0.1:{port}", "--timeout", "3"),
        ],
        check=True,
        capture_output=True,
    )


def up(proc: subprocess.Popen[str], port: int) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}: see its stderr")
    return listening(port)


def cell_of(port: int, tenant: str) -> str:
    status, body, _ = get(port, "/x", {"X-Tenant-Id": tenant})
    assert status == 200, body
    return body.split()[0]


@pytest.fixture
def haproxy(
    tmp_path: Path, cells: Cells
) -> Iterator[tuple[Path, Path, int, subprocess.Popen[str]]]:
    table, out, port = tmp_path / "routing.json", tmp_path / "haproxy", free_port()
    write_table(table, table_of(cells, {"acme": "a", "globex": "b"}))
    export(table, "haproxy", out, port)
    subprocess.run(
        ["haproxy", "-c", "-f", str(out / "haproxy.cfg")], check=True, capture_output=True
    )
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(out / "haproxy.cfg")], text=True)
    wait_for(lambda: up(proc, port) and (out / "haproxy.sock").exists(), "haproxy")
    yield table, out, port, proc
    stop(proc)


def test_haproxy_routes_by_the_map_and_moves_tenants_without_a_reload(
    haproxy: tuple[Path, Path, int, subprocess.Popen[str]], cells: Cells
) -> None:
    table, out, port, proc = haproxy
    assert cell_of(port, "acme") == "a" and cell_of(port, "globex") == "b"
    status, body, _ = get(port, "/x")
    assert status == 400 and "no tenant" in body
    write_table(table, table_of(cells, {"acme": "b", "initech": "a"}, version=2))
    sync = subprocess.run(
        [
            *(str(CELLOPS), "router", "haproxy-sync", "--table", str(table)),
            *("--socket", str(out / "haproxy.sock"), "--map", str(out / "tenants.map")),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert sync.stdout.startswith("3 change(s) applied")  # set acme, add initech, del globex
    assert cell_of(port, "acme") == "b" and cell_of(port, "initech") == "a"
    assert proc.poll() is None  # the same process: no reload
    assert (out / "tenants.map").read_text() == "acme cell_b\ninitech cell_a\n"


def test_haproxy_answers_a_down_cells_tenants_with_503_and_retry_after(
    haproxy: tuple[Path, Path, int, subprocess.Popen[str]], cells: Cells
) -> None:
    _, _, port, _ = haproxy
    stop(cells["b"][0])
    status, _, headers = get(port, "/x", {"X-Tenant-Id": "globex"})
    assert status == 503 and headers.get("retry-after") == "5"
    assert cell_of(port, "acme") == "a"


def start_nginx(out: Path, port: int) -> subprocess.Popen[str]:
    conf = out / "nginx.conf"
    conf.write_text(
        f"daemon off;\npid {out}/nginx.pid;\nerror_log {out}/error.log;\n"
        "events {}\nhttp {\n"
        f"  access_log off;\n  client_body_temp_path {out}/body;\n"
        f"  proxy_temp_path {out}/proxy;\n  fastcgi_temp_path {out}/fcgi;\n"
        f"  uwsgi_temp_path {out}/uwsgi;\n  scgi_temp_path {out}/scgi;\n"
        f"  include {out}/cellops-map.conf;\n  include {out}/cellops-server.conf;\n}}\n"
    )
    proc = subprocess.Popen(["nginx", "-p", str(out), "-c", str(conf)], text=True)
    wait_for(lambda: up(proc, port), "nginx")
    return proc


def test_nginx_routes_by_the_exported_map(tmp_path: Path, cells: Cells) -> None:
    table, out, port = tmp_path / "routing.json", tmp_path / "nginx", free_port()
    write_table(table, table_of(cells, {"acme": "a", "globex": "b"}))
    export(table, "nginx", out, port)
    proc = start_nginx(out, port)
    try:
        assert cell_of(port, "acme") == "a" and cell_of(port, "globex") == "b"
        assert cell_of(port, "unlisted") in ("a", "b")
        assert get(port, "/x")[0] == 400
        stop(cells["b"][0])
        status, _, headers = get(port, "/x", {"X-Tenant-Id": "globex"})
        assert status == 503 and headers.get("retry-after") == "5"
    finally:
        stop(proc)


def test_nginx_takes_the_tenant_off_the_path_as_the_router_does(
    tmp_path: Path, cells: Cells
) -> None:
    table, out, port = tmp_path / "routing.json", tmp_path / "nginx", free_port()
    write_table(table, replace(table_of(cells, {"acme": "a", "globex": "b"}), key="path"))
    export(table, "nginx", out, port)
    proc = start_nginx(out, port)
    try:
        assert get(port, "/acme/orders/7?x=1")[1].split()[:2] == ["a", "/orders/7"]
        assert get(port, "/globex")[1].split()[:2] == ["b", "/"]
    finally:
        stop(proc)


def test_haproxy_keeps_an_unlisted_tenant_on_one_cell_by_a_custom_header(
    tmp_path: Path, cells: Cells
) -> None:
    """The hashed backend hashes the table's header: hashing a header that is not there
    made HAProxy spread each unlisted tenant's requests over every cell."""
    table, out, port = tmp_path / "routing.json", tmp_path / "haproxy", free_port()
    write_table(table, replace(table_of(cells, {"acme": "a"}), header="X-Customer"))
    export(table, "haproxy", out, port)
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(out / "haproxy.cfg")], text=True)
    try:
        wait_for(lambda: up(proc, port), "haproxy")
        for tenant in ("initech", "umbrella", "hooli"):
            homes = {get(port, "/x", {"X-Customer": tenant})[1].split()[0] for _ in range(8)}
            assert len(homes) == 1, f"{tenant} was served by {homes}"
    finally:
        stop(proc)


def test_haproxy_takes_its_config_for_an_https_cell(tmp_path: Path) -> None:
    table, out = tmp_path / "routing.json", tmp_path / "haproxy"
    routes = {"a": CellRoute("https://localhost:8443"), "b": CellRoute("http://127.0.0.1:9")}
    write_table(table, RoutingTable(1, "r1", routes, {"acme": "a"}, ("a", "b")))
    export(table, "haproxy", out, free_port())
    assert "ssl verify required" in (out / "haproxy.cfg").read_text()
    subprocess.run(["haproxy", "-c", "-f", str(out / "haproxy.cfg")], check=True)


def ask(port: int, path: str, *headers: tuple[str, str]) -> tuple[int, list[str]]:
    """A request with headers as given (repeated ones too): the status and the toy cell's
    answer (cell, path, the tenant header it got)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=any(k.lower() == "host" for k, _ in headers))
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read().decode().split()
    finally:
        conn.close()


def start_engine(
    tmp_path: Path, fmt: str, table: RoutingTable
) -> tuple[subprocess.Popen[str], int]:
    path, out, port = tmp_path / f"routing-{fmt}.json", tmp_path / fmt, free_port()
    write_table(path, table)
    export(path, fmt, out, port)
    if fmt == "nginx":
        return start_nginx(out, port), port
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(out / "haproxy.cfg")], text=True)
    wait_for(lambda: up(proc, port), "haproxy")
    return proc, port


@pytest.mark.parametrize("key", ["host", "path"])
def test_haproxy_keeps_an_unlisted_tenant_on_one_cell_by_host_or_path(
    tmp_path: Path, cells: Cells, key: str
) -> None:
    """`balance uri` hashed each request's URI, not its tenant: one tenant's requests went to
    every cell, one path here and another there."""
    proc, port = start_engine(tmp_path, "haproxy", replace(table_of(cells, {}), key=key))
    try:
        for tenant in ("initech", "umbrella", "hooli"):
            homes = set()
            for n in range(8):
                if key == "host":
                    answer = ask(port, f"/p{n}", ("Host", f"{tenant}.example.com"))
                else:
                    answer = ask(port, f"/{tenant}/p{n}")
                assert answer[0] == 200
                homes.add(answer[1][0])
            assert len(homes) == 1, f"{tenant} was served by {homes}"
    finally:
        stop(proc)


@pytest.mark.parametrize("fmt", ["haproxy", "nginx"])
def test_the_engines_tell_the_cell_the_tenant_they_routed_by(
    tmp_path: Path, cells: Cells, fmt: str
) -> None:
    """A client's own X-Tenant-Id reached the cell unchanged with the host or path key;
    with the header key HAProxy routed "acme, globex" to globex's cell, and two headers
    to the last one's."""
    table = table_of(cells, {"acme": "a", "globex": "b"})
    proc, port = start_engine(tmp_path, fmt, replace(table, key="path"))
    try:
        assert ask(port, "/acme/x", ("X-Tenant-Id", "globex")) == (200, ["a", "/x", "acme"])
        assert ask(port, "/acme%20x/y")[0] == 400  # no tenant id: refused, as the router does
    finally:
        stop(proc)
    proc, port = start_engine(tmp_path / "header", fmt, table)
    try:
        assert ask(port, "/x", ("X-Tenant-Id", "acme, globex"))[0] == 400
        both = ask(port, "/x", ("X-Tenant-Id", "acme"), ("X-Tenant-Id", "globex"))
        # HAProxy refuses two; nginx 1.22 routes by the first (1.23 joins them: refused),
        # and the cell gets that one only
        assert both[0] == 400 or (fmt == "nginx" and both == (200, ["a", "/x", "acme"]))
    finally:
        stop(proc)


def test_haproxy_takes_a_hosts_tenant_without_case(tmp_path: Path, cells: Cells) -> None:
    table = replace(table_of(cells, {"acme": "a", "globex": "b"}), key="host")
    proc, port = start_engine(tmp_path, "haproxy", table)
    try:
        for host in ("acme.example.com", "ACME.Example.com:80", "Acme.example.com."):
            assert ask(port, "/x", ("Host", host)) == (200, ["a", "/x", "acme"])
        assert ask(port, "/x", ("Host", "GLOBEX.example.com"))[1][0] == "b"
    finally:
        stop(proc)


def test_haproxy_sync_refuses_a_map_naming_a_backend_haproxy_lacks(
    haproxy: tuple[Path, Path, int, subprocess.Popen[str]], cells: Cells
) -> None:
    """A tenant moved to a cell the running config has no backend for went to the hashed
    backend: HAProxy sent it to whichever cell its hash named."""
    table, out, port, _ = haproxy
    moved = table_of(cells, {"acme": "a", "globex": "b"}, version=2)
    routes = {**moved.cells, "c": CellRoute("http://127.0.0.1:9")}
    write_table(table, replace(moved, cells=routes, tenants={"acme": "c", "globex": "a"}))
    sync = subprocess.run(
        [
            *(str(CELLOPS), "router", "haproxy-sync", "--table", str(table)),
            *("--socket", str(out / "haproxy.sock"), "--map", str(out / "tenants.map")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert sync.returncode == 2 and "no backend cell_c" in sync.stderr
    assert cell_of(port, "acme") == "a" and cell_of(port, "globex") == "b"  # nothing changed
