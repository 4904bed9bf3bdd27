"""Which headers cross the router, each way.

Hop-by-hop headers (RFC 9110 7.6.1) stay on their own leg, and so do the headers a
`Connection` header names; Host and Content-Length are written anew for the cell's leg
(and by aiohttp for the client's). Everything else, X-Forwarded-* included, is passed on
as it came, but the tenant header: the router writes the tenant it routed by. Both ways
add `X-Cellops-Cell` (the router's own: a client's is dropped).
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"host",
        b"x-cellops-cell",
    }
)

_OWN: dict[str, frozenset[bytes]] = {}  # HOP_BY_HOP and a table's tenant header, by header


def _dropped(connection: list[bytes]) -> frozenset[bytes]:
    """HOP_BY_HOP and the header names the Connection header(s) list."""
    named = {token.strip().lower() for value in connection for token in value.split(b",")}
    return HOP_BY_HOP | named


def forwarded_headers(
    request: web.BaseRequest, own: list[bytes], tenant_header: str
) -> list[bytes]:
    """The request's headers for the cell, as `Name: value\\r\\n` lines (bytes as they came),
    then the router's `own` lines. The client's `tenant_header` never crosses: `own` says
    the tenant the router routed by (a client's copy, or a second one, would contradict it;
    with the host or path key the cell had only the client's word)."""
    raw = request.raw_headers
    drop = _OWN.get(tenant_header)
    if drop is None:
        drop = _OWN[tenant_header] = HOP_BY_HOP | {tenant_header.lower().encode()}
    if "Connection" in request.headers:
        drop = drop | _dropped([v for k, v in raw if k.lower() == b"connection"])
    lines = [b"%s: %s\r\n" % (k, v) for k, v in raw if k.lower() not in drop]
    lines += own
    return lines


def answer_headers(raw: list[tuple[bytes, bytes]]) -> CIMultiDict[str]:
    """The cell's answer's headers for the client (repeated ones, Set-Cookie, all kept)."""
    drop = HOP_BY_HOP
    connection = [v for k, v in raw if k.lower() == b"connection"]
    if connection:
        drop = _dropped(connection)
    return CIMultiDict(
        (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
        for k, v in raw
        if k.lower() not in drop
    )
