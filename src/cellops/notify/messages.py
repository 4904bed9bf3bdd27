"""Which events are notified, and their bodies: generic JSON or Slack-compatible, and the
HMAC-SHA256 signature of a body. Pure.

Headers of every delivery: `X-Cellops-Event` (the event's kind), `X-Cellops-Delivery`
(the event's id: the same on every retry, so a receiver can drop duplicates) and, with a
secret, `X-Cellops-Signature-256: sha256=<hex HMAC-SHA256 of the body, keyed by the
secret>` (GitHub's scheme: verify it in constant time before trusting the body).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

TITLES = {
    "rollout-started": "rollout started",
    "wave-done": "wave done",
    "rollout-halted": "rollout halted",
    "rolled-back": "cell rolled back",
    "rollout-completed": "rollout completed",
    "revision-rejected": "revision rejected",
    "drift": "drift repaired",
}
SIGNATURE = "X-Cellops-Signature-256"


@dataclass(frozen=True)
class Notice:
    """One event to notify (the store's `Event`, with its time as ISO-8601 UTC)."""

    id: int
    kind: str
    at: str
    message: str
    cell: str | None = None
    service: str | None = None
    revision: str | None = None
    rollout: int | None = None


def body(notice: Notice, fmt: str, fleet: str = "") -> bytes:
    """The request body: `json` (every field) or `slack` (`text`, for an incoming webhook)."""
    title = TITLES.get(notice.kind, notice.kind)
    if fmt == "slack":
        where = f" ({fleet})" if fleet else ""
        return json.dumps({"text": f"cellops{where}: {title}: {notice.message}"}).encode()
    fields = {k: v for k, v in vars(notice).items() if v is not None}
    return json.dumps({"title": title, "fleet": fleet, **fields}, sort_keys=True).encode()


def signature(secret: str, payload: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def headers(notice: Notice, payload: bytes, secret: str | None) -> dict[str, str]:
    out = {
        "Content-Type": "application/json",
        "User-Agent": "cellops-notify",
        "X-Cellops-Event": notice.kind,
        "X-Cellops-Delivery": str(notice.id),
    }
    if secret:
        out[SIGNATURE] = signature(secret, payload)
    return out


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt `attempt` (1, 2, ...): base, 2 base, 4 base,
    ... at most `cap`."""
    return float(min(cap, base * 2 ** (attempt - 1)))
