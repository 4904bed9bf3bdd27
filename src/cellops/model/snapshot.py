"""What a source hands to the spec layer: the files of one revision, already read.

The source (Git or a working directory) does the I/O; everything after works on this value.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cellops.model.problems import Problem


@dataclass(frozen=True)
class FileBlob:
    """One fleet document. `oid` identifies the content (a Git blob id) for caching."""

    oid: str
    data: bytes


@dataclass(frozen=True)
class Snapshot:
    """The fleet files of one revision.

    files: fleet documents by repo-relative POSIX path (`cellops.yaml`, `cells/a.yaml`,
        `services/x/service.yaml`), plus anything else found under `cells/` so that the spec
        layer can say what is wrong with it.
    trees: content hash of each directory that is part of a service's identity
        (`services/x/app`, `services/x/manifests`), by path.
    problems: what the source refused to read (symlinks, oversized files, escaping links).
    """

    revision: str
    files: Mapping[str, FileBlob]
    trees: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    message: str = ""
    committed_at: float | None = None  # the commit's time (Unix seconds), when known
