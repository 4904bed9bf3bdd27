"""Image verdicts and resolved tags in the store (migration 6): what `status` shows, and
what keeps a tag resolved once across controller restarts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cellops.images.verdict import Verdict
from cellops.store.database import open_database


class VerdictLedger:
    def __init__(self, path: Path) -> None:
        self._db: sqlite3.Connection = open_database(path)

    def close(self) -> None:
        self._db.close()

    def record(self, verdict: Verdict) -> None:
        self._db.execute(
            "INSERT INTO image_verdicts (image, digest, signer, reason, at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (image) DO UPDATE SET digest = excluded.digest,"
            " signer = excluded.signer, reason = excluded.reason, at = excluded.at",
            (verdict.image, verdict.digest, verdict.signer, verdict.reason, verdict.at),
        )

    def verdicts(self) -> list[Verdict]:
        rows = self._db.execute(
            "SELECT image, digest, signer, reason, at FROM image_verdicts ORDER BY image"
        ).fetchall()
        return [Verdict(r["image"], r["digest"], r["signer"], r["reason"], r["at"]) for r in rows]

    def resolve(self, image: str, digest: str, at: float) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO resolved_tags (image, digest, at) VALUES (?, ?, ?)",
            (image, digest, at),
        )

    def resolved(self) -> dict[str, str]:
        rows = self._db.execute("SELECT image, digest FROM resolved_tags").fetchall()
        return {r["image"]: r["digest"] for r in rows}


def verdict_lines(verdicts: list[Verdict]) -> list[str]:
    """For `status`: one line per image that may not run, and a count of those that may."""
    passed = [v for v in verdicts if v.ok]
    lines = [f"images: {len(passed)} verified"] if verdicts else []
    lines += [f"image refused: {v.image}: {v.reason}" for v in verdicts if not v.ok]
    return lines


def verdict_dict(verdict: Verdict) -> dict[str, object]:
    """For `status -o json`."""
    return {
        "image": verdict.image,
        "digest": verdict.digest,
        "signer": verdict.signer,
        "reason": verdict.reason,
        "at": verdict.at,
    }


def read_verdicts(path: Path) -> list[Verdict]:
    """The verdicts a store at `path` holds (for `status`, with no controller running)."""
    ledger = VerdictLedger(path)
    try:
        return ledger.verdicts()
    finally:
        ledger.close()
