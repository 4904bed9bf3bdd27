"""Where local cells' code runs from when the cells have users of their own (as root).

State folders usually sit under root's home, which no other user may enter, so the copies
of app trees are published outside them, per state folder:

    /var/lib/cellops/fleets/<fleet id>/apps/<tree id>/   read-only copies, world-readable
    /var/lib/cellops/fleets/<fleet id>/state              the state folder they belong to

The folders on the way are 0711: passable, not listable, so a cell's user reads the code
it is pointed at and cannot list what other fleets run. A copy appears whole or not at
all. Copies whose state folder is gone are removed when a controller starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

FLEETS = Path("/var/lib/cellops/fleets")


def fleet_id(state_root: Path) -> str:
    return hashlib.sha256(str(state_root.resolve()).encode()).hexdigest()[:12]


def apps_root(state_root: Path) -> Path:
    return FLEETS / fleet_id(state_root) / "apps"


def publish(state_root: Path, target: Path, export: Callable[[Path], None]) -> None:
    """Export an app tree to `target` (in `apps_root(state_root)`): folders 0755, files
    kept read-only, renamed into place whole."""
    root = apps_root(state_root)
    for folder in (root.parent.parent.parent, root.parent.parent, root.parent, root):
        folder.mkdir(mode=0o711, exist_ok=True)
        folder.chmod(0o711)
    (root.parent / "state").write_text(str(state_root.resolve()))
    staging = root / f".staging-{os.getpid()}-{time.monotonic_ns()}"
    staging.mkdir(mode=0o700)
    try:
        export(staging / target.name)
        for path, folders, _ in os.walk(staging / target.name):
            os.chmod(path, 0o755)  # folders linked to are reached (and changed) on their own
            folders[:] = [f for f in folders if not os.path.islink(os.path.join(path, f))]
        # another controller may have published it first: the same tree, so identical
        with contextlib.suppress(OSError):
            (staging / target.name).rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def collect_orphans() -> list[Path]:
    """Remove the copies of fleets whose state folder is gone."""
    gone = []
    for record in sorted(FLEETS.glob("*/state")):
        with contextlib.suppress(OSError):
            if not Path(record.read_text()).exists():
                shutil.rmtree(record.parent)
                gone.append(record.parent)
    return gone
