"""`cellops` run as a user runs it, for the CLI tests: a real process, a wide terminal
with no colours, and none of the caller's CELLOPS_* settings or config file (a context
there would send the command to a remote controller)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CELLOPS = str(Path(sys.executable).parent / "cellops")


def cellops(
    *args: str | Path,
    cwd: Path | None = None,
    columns: int = 200,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`env`: CELLOPS_* settings (or others) this run is given."""
    given = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLOPS_")}
    env |= {"COLUMNS": str(columns), "NO_COLOR": "1", "CELLOPS_CONFIG": "/nonexistent/config"}
    env |= given
    return subprocess.run(
        [CELLOPS, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
        check=False,
    )
