"""What may stand in a routing table: names, ids and cell URLs that are safe to route by and
to write into an HAProxy or nginx configuration (no spaces, quotes, braces or newlines).

The spec checks a revision's Tenants with these, and `parse_table` checks a table file
with them, so a hand-made or damaged table cannot smuggle a line into an engine's config.
Pure: no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# safe as a HAProxy or nginx map key and in a header, host label or path segment; `\Z`,
# not `$`, ends each pattern: `$` also matches before a final newline ("acme\n")
TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
CELL_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")  # a DNS-1123 label
HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}\Z")
REVISION = re.compile(r"^[A-Za-z0-9._-]{0,128}\Z")
STATES = frozenset({"active", "draining", "quarantined"})
_PATH = re.compile(r"^[A-Za-z0-9._~/-]*\Z")
_EXPECTED = "expected http(s)://host[:port][/path]"


def cell_url_problem(url: str) -> str | None:
    """Why `url` cannot be a cell's entry point, or None when it can."""
    if len(url) > 2048:
        return "is longer than 2048 characters"
    if not url.isascii() or not url.isprintable() or " " in url:
        return f"has spaces, control or non-ASCII characters: {_EXPECTED}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a URL ({exc}): {_EXPECTED}"
    if parts.scheme not in ("http", "https"):
        return f"has scheme {parts.scheme or 'none'!r}: {_EXPECTED}"
    if "@" in parts.netloc:
        return "carries credentials (user@): keep secrets out of the fleet repo"
    if not parts.hostname or port == 0:
        return f"has no host or port 0: {_EXPECTED}"
    if "?" in url or "#" in url:
        return f"has a query or fragment: {_EXPECTED}"
    if not _PATH.match(parts.path):
        return "has a path with characters other than letters, digits and . _ ~ / -"
    return None
