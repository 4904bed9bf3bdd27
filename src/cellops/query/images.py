"""Image verdicts as the API and the dashboard show them: each image the fleet runs, the
digest it was verified at, who signed it, and why it may not run (if it may not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cellops.query.base import iso


def images(state_dir: Path) -> list[dict[str, Any]]:
    """Every verdict the store at `state_dir` holds, refused images first."""
    from cellops.images.ledger import read_verdicts, verdict_dict

    found = [
        {**verdict_dict(v), "ok": v.ok, "at": iso(v.at)}
        for v in read_verdicts(state_dir / "cellops.db")
    ]
    return sorted(found, key=lambda v: (v["ok"], v["image"]))
