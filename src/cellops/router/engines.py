"""Production engines made from the routing table: HAProxy (config + map) and nginx (map).

Listed tenants are map entries (tenant -> cell backend); tenants the map does not list go
to a consistent-hash backend over the cells that take tenants (the engine's own hash:
list a tenant in tenants/ to give it one fixed home in every router). Bulkheads are the
engines' own: a per-server connection limit, a short queue, timeouts, no retries and no
redispatch to another cell, and a 503 with Retry-After.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cellops.router.bulkhead import Limits
from cellops.tenancy.checks import TENANT_ID
from cellops.tenancy.table import RoutingTable

HASHED = "tenants_hashed"
# checks.TENANT_ID in the engines' regex syntax (no header value holds a newline)
TENANT_PATTERN = TENANT_ID.pattern.removesuffix("\\Z") + "$"


def backend(cell: str) -> str:
    return f"cell_{cell}"


def map_lines(table: RoutingTable) -> dict[str, str]:
    """tenant -> backend name, for the tenants the table lists on a cell that is routed."""
    routed = {c for c, r in table.cells.items() if r.state != "quarantined"}
    return {t: backend(c) for t, c in sorted(table.tenants.items()) if c in routed}


class EngineError(ValueError):
    """A routing table this engine cannot carry out as it says; the message says why."""


def _hostport(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_routes(table: RoutingTable, engine: str, *, tls: bool) -> None:
    """The engines send a request to host:port with its own path: an entry point with a
    path (or, for nginx, https) would be reached at the wrong place, so it is refused."""
    for name, route in sorted(table.cells.items()):
        parts = urlsplit(route.url)
        if parts.path not in ("", "/"):
            raise EngineError(
                f"cell {name}: entry point {route.url} has a path, and {engine} sends"
                " requests to host:port with their own path: give the cell an entry point"
                " without one, or route through `cellops router run`"
            )
        if parts.scheme == "https" and not tls:
            raise EngineError(
                f"cell {name}: entry point {route.url} is https, which the {engine} export"
                " does not speak to cells: use the HAProxy export or `cellops router run`"
            )


def haproxy_config(
    table: RoutingTable, listen: str, map_path: str, socket: str, limits: Limits | None = None
) -> str:
    limits = limits or Limits()
    _check_routes(table, "HAProxy", tls=True)
    key = {  # fhdr: the value whole (hdr cuts at commas: "acme, victim" gave victim)
        "header": f"req.fhdr({table.header})",
        "host": "req.hdr(host),field(1,:),field(1,.),lower",  # host names have no case
        "path": "path,field(2,/)",
    }[table.key]
    lines = [
        "global",
        f"    stats socket {socket} mode 600 level admin",
        "    maxconn 4096",
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        "    retries 0",
        "    no option redispatch",
        f"    timeout connect {int(limits.connect_timeout * 1000)}ms",
        "    timeout client 30s",
        f"    timeout server {int(limits.timeout * 1000)}ms",
        "    timeout queue 1s",
        '    http-error status 503 content-type text/plain string "cell unavailable"'
        f" hdr Retry-After {limits.retry_after}",
        "frontend tenants",
        f"    bind {listen}",
        f"    http-request set-var(txn.tenant) {key}",
        '    http-request return status 400 content-type text/plain string "no tenant"'
        f" if !{{ var(txn.tenant) -m reg {TENANT_PATTERN} }}"
        f" || {{ req.fhdr_cnt({table.header}) gt 1 }}",  # two: which one is meant?
        # the cell is told the tenant HAProxy routed by, never a client's other word for it
        f"    http-request set-header {table.header} %[var(txn.tenant)]",
    ]
    if table.key == "path":
        lines.append("    http-request set-path %[path,regsub(^/[^/]*,)]")
    lines += [
        f"    use_backend %[var(txn.tenant),map({map_path},{HASHED})]",
        f"    default_backend {HASHED}",
        f"    http-after-response set-header Retry-After {limits.retry_after} if {{ status 503 }}",
    ]
    for name, route in sorted(table.cells.items()):
        lines += [f"backend {backend(name)}", _server(name, route.url, limits)]
    # the tenant itself is hashed, whatever the key: `balance uri` spread a host's or a
    # path's tenant over every cell, one URI here and another there
    lines += [f"backend {HASHED}", "    balance hash var(txn.tenant)", "    hash-type consistent"]
    lines += [_server(c, table.cells[c].url, limits) for c in table.ring]
    return "\n".join(lines) + "\n"


def _server(name: str, url: str, limits: Limits) -> str:
    line = f"    server {name} {_hostport(url)} maxconn {limits.max_connections}"
    parts = urlsplit(url)
    if parts.scheme == "https":  # verified against the system's CAs, by the URL's host name
        line += f" ssl verify required ca-file @system-ca sni str({parts.hostname})"
    return line


def haproxy_map(table: RoutingTable) -> str:
    return "".join(f"{t} {b}\n" for t, b in map_lines(table).items())


def _nginx_source(key: str, header: str) -> str:
    """The nginx variable that holds a request's tenant."""
    if key == "header":
        return "$http_" + header.lower().replace("-", "_")
    return "$cellops_host_tenant" if key == "host" else "$cellops_path_tenant"


def nginx_config(table: RoutingTable, limits: Limits | None = None) -> str:
    """An `http {}` include: the tenant map, one upstream per cell, and a hashed upstream."""
    limits = limits or Limits()
    _check_routes(table, "nginx", tls=False)
    source = _nginx_source(table.key, table.header)
    lines = [
        'map $host $cellops_host_tenant { "~^(?<t>[^.]+)\\." $t; default ""; }',
        'map $uri $cellops_path_tenant { "~^/(?<t>[^/]+)" $t; default ""; }',
        f"map {source} $cellops_backend {{",
        f"    default {HASHED};",
        '    "" "";',
        f'    "~^(?!{TENANT_PATTERN[1:]})" "";',  # no tenant id: refused, as the router does
    ]
    lines += [f"    {t} {b};" for t, b in map_lines(table).items()]
    lines.append("}")
    for name, route in sorted(table.cells.items()):
        lines += [
            f"upstream {backend(name)} {{",
            f"    server {_hostport(route.url)} max_conns={limits.max_connections};",
            "}",
        ]
    lines += [f"upstream {HASHED} {{", f"    hash {source} consistent;"]
    lines += [f"    server {_hostport(table.cells[c].url)};" for c in table.ring]
    lines += ["}", f"# routing table version {table.version}, revision {table.revision}"]
    return "\n".join(lines) + "\n"


def nginx_server(
    listen: str, limits: Limits | None = None, key: str = "header", header: str = "X-Tenant-Id"
) -> str:
    """A `server {}` that proxies by the map (no retry into another cell); with the path
    key, the tenant's segment is taken off the path, as the embedded router and HAProxy do.
    The cell is told the tenant nginx routed by in `header` (replacing any the client sent)."""
    limits = limits or Limits()
    strip = ["        rewrite ^/[^/]+/?(.*)$ /$1 break;"] if key == "path" else []
    source = _nginx_source(key, header)
    return (
        "\n".join(
            [
                "server {",
                f"    listen {listen};",
                '    if ($cellops_backend = "") { return 400 "no tenant\\n"; }',
                "    location / {",
                *strip,
                "        proxy_pass http://$cellops_backend;",
                f"        proxy_set_header {header} {source};",
                "        proxy_next_upstream off;",
                f"        proxy_connect_timeout {int(limits.connect_timeout * 1000)}ms;",
                f"        proxy_read_timeout {int(limits.timeout * 1000)}ms;",
                "        proxy_intercept_errors off;",
                "    }",
                "    error_page 502 503 504 =503 @down;",
                f"    location @down {{ add_header Retry-After {limits.retry_after} always;"
                ' return 503 "cell unavailable\\n"; }',
                "}",
            ]
        )
        + "\n"
    )
