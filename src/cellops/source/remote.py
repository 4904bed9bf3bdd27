"""A fleet repo at a URL: cloned once into the state folder (bare), fetched on each poll.

Any URL libgit2 can fetch: https://, ssh:// (or user@host:path), file://.
"""

from __future__ import annotations

from pathlib import Path

import pygit2

from cellops.model.errors import SourceError
from cellops.source.git import GitSource
from cellops.statedir import is_url  # here too, for the controller's callers

__all__ = ["MirroredSource", "is_url"]


class MirroredSource(GitSource):
    """Reads a local bare mirror of `url`; `refresh()` fetches every branch."""

    def __init__(self, url: str, mirror: Path) -> None:
        self.url = url
        if not (mirror / "HEAD").exists():
            mirror.parent.mkdir(parents=True, exist_ok=True)
            try:
                pygit2.clone_repository(url, str(mirror), bare=True)
            except (pygit2.GitError, ValueError, KeyError) as exc:
                raise SourceError(f"cannot clone {url}: {exc}") from exc
        super().__init__(mirror)

    def refresh(self) -> None:
        repo = pygit2.Repository(str(self.root))
        try:
            repo.remotes["origin"].fetch(["+refs/heads/*:refs/heads/*"])
        except (pygit2.GitError, KeyError) as exc:
            raise SourceError(f"cannot fetch {self.url}: {exc}") from exc
