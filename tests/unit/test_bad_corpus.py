"""Every malformed revision under tests/fixtures/bad/ is rejected, naming file and line.

A case is a folder: `case.yaml` says what to change in the base fleet and which errors to
expect; `files/` holds files laid over the base fleet (same relative paths).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from cellops.model.errors import RevisionRejected
from cellops.model.problems import Severity
from cellops.source.git import GitSource
from cellops.spec.loader import load_revision
from tests.fleetrepo import FIXTURES, FleetRepo

CASES = sorted(p for p in (FIXTURES / "bad").iterdir() if (p / "case.yaml").is_file())


def build_case(case: Path, where: Path) -> tuple[FleetRepo, dict[str, object]]:
    spec = yaml.safe_load((case / "case.yaml").read_text())
    repo = FleetRepo(where)
    previous = None
    if spec.get("previous"):
        previous = repo.commit("base fleet")
    for relative in spec.get("remove", []):
        repo.remove(relative)
    if (case / "files").is_dir():
        shutil.copytree(case / "files", where, dirs_exist_ok=True)
    for relative, target in (spec.get("symlinks") or {}).items():
        link = where / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()
        os.symlink(target, link)
    for relative, size in (spec.get("generate") or {}).items():
        repo.write(relative, b"# filler\n" + b"x" * int(size))
    spec["_previous"] = previous
    return repo, spec


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_revision_is_rejected_with_file_and_line(case: Path, tmp_path: Path) -> None:
    repo, spec = build_case(case, tmp_path / "fleet")
    head = repo.commit("bad change")
    source = GitSource(repo.path)
    previous = load_revision(source.snapshot(str(spec["_previous"]))) if spec["_previous"] else None
    with pytest.raises(RevisionRejected) as caught:
        load_revision(source.snapshot(head), previous=previous)
    errors = [p for p in caught.value.problems if p.severity is Severity.ERROR]
    assert errors, "rejected without an error"
    for expected in spec["expect"]:
        matches = [
            p
            for p in errors
            if p.file == expected["file"]
            and p.line == expected.get("line")
            and expected["message"].lower() in p.message.lower()
            and expected.get("field", p.field) == p.field
        ]
        assert matches, f"expected {expected}, got:\n" + "\n".join(map(str, errors))
