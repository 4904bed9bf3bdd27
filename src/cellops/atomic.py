"""Files replaced whole: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(
    path: Path, data: bytes, *, durable: bool = False, folder_mode: int = 0o777
) -> None:
    """Write `data` to a new file of its own (O_EXCL, 0600) beside `path`, then rename it
    over `path`: a planted file or link at a fixed staging name is never written through.
    `durable`: synced to disk before the rename (configuration, routing tables)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=folder_mode)
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(staging, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staging)
        raise
