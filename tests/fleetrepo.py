"""Real Git fleet repos for tests, built in a temp dir with pygit2 (no mocks of Git)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pygit2

FIXTURES = Path(__file__).parent / "fixtures"
BASE_FLEET = FIXTURES / "base-fleet"
EXAMPLE_FLEET = Path(__file__).parents[1] / "examples" / "fleet"
_AUTHOR = pygit2.Signature("cellops tests", "tests@cellops.invalid", 1_700_000_000, 0)


class FleetRepo:
    """A fleet repo on disk; `commit()` records the working tree as a new commit."""

    def __init__(self, path: Path, template: Path | None = BASE_FLEET) -> None:
        self.path = path
        if template is not None:
            shutil.copytree(template, path, symlinks=True)
        else:
            path.mkdir(parents=True)
        self.repo = pygit2.init_repository(str(path), initial_head="main")

    def write(self, relative: str, text: str | bytes) -> Path:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
        return target

    def read(self, relative: str) -> str:
        return (self.path / relative).read_text()

    def replace(self, relative: str, old: str, new: str) -> None:
        text = self.read(relative)
        assert old in text, f"{old!r} not in {relative}"
        self.write(relative, text.replace(old, new, 1))

    def remove(self, relative: str) -> None:
        target = self.path / relative
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()

    def commit(self, message: str = "change") -> str:
        index = self.repo.index
        index.add_all()
        index.write()
        tree = index.write_tree()
        parents = [] if self.repo.head_is_unborn else [self.repo.head.target]
        oid = self.repo.create_commit("HEAD", _AUTHOR, _AUTHOR, message, tree, parents)
        return str(oid)
