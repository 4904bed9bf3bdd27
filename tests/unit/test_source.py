"""Reading fleets from Git (pygit2) and from a directory: same content ids, same refusals."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pygit2
import pytest

from cellops.model.errors import SourceError
from cellops.source.git import GitSource
from cellops.source.worktree import read_worktree
from cellops.spec.loader import load_revision
from tests.fleetrepo import FleetRepo

REALWORLD = Path(__file__).parents[3] / "shared" / "realworld" / "podinfo"


def test_revisions_resolve_and_know_their_parent(fleet: FleetRepo) -> None:
    first = fleet.repo.head.target
    fleet.write("services/api/app/extra.py", "X = 1\n")
    second = fleet.commit("second")
    source = GitSource(fleet.path)
    assert source.resolve("HEAD") == second
    assert source.parent("HEAD") == str(first)
    assert source.parent(str(first)) is None
    assert source.resolve("HEAD~1") == str(first)


def test_unknown_revision_and_missing_repo_are_source_errors(
    fleet: FleetRepo, tmp_path: Path
) -> None:
    with pytest.raises(SourceError, match="unknown revision 'nope'"):
        GitSource(fleet.path).snapshot("nope")
    with pytest.raises(SourceError, match="not a Git repository"):
        GitSource(tmp_path / "elsewhere")
    with pytest.raises(SourceError, match="no such directory"):
        read_worktree(tmp_path / "elsewhere")


def test_worktree_ids_equal_git_ids(fleet: FleetRepo) -> None:
    fleet.write("services/api/app/pkg/deep/mod.py", "Y = 2\n")
    script = fleet.write("services/api/app/run.sh", "#!/bin/sh\n")
    script.chmod(0o755)
    os.symlink("run.sh", fleet.path / "services/api/app/link")
    (fleet.path / "services/api/app/empty").mkdir()  # Git does not record empty folders
    head = fleet.commit("more files")
    from_git = GitSource(fleet.path).snapshot(head)
    from_disk = read_worktree(fleet.path)
    assert from_disk.trees == from_git.trees
    assert {p: b.oid for p, b in from_disk.files.items()} == {
        p: b.oid for p, b in from_git.files.items()
    }
    tree = fleet.repo.revparse_single(f"{head}:services/api/app")
    assert from_git.trees["services/api/app"] == str(tree.id)


def test_only_fleet_documents_are_read(fleet: FleetRepo) -> None:
    fleet.write("README.md", "# my fleet\n")
    fleet.write("services/api/notes.txt", "not a fleet document\n")
    snapshot = GitSource(fleet.path).snapshot(fleet.commit("docs"))
    assert sorted(snapshot.files) == [
        "cellops.yaml",
        "cells/canary.yaml",
        "cells/eu-1.yaml",
        "cells/us-1.yaml",
        "services/api/service.yaml",
        "services/store/service.yaml",
    ]


def test_links_inside_the_service_folder_are_fine(fleet: FleetRepo) -> None:
    os.symlink("../service.yaml", fleet.path / "services/api/app/spec-link")
    head = fleet.commit("link inside the service folder")
    assert GitSource(fleet.path).snapshot(head).problems == ()


def test_podinfo_manifests_are_part_of_a_kubernetes_cells_identity(fleet: FleetRepo) -> None:
    """A service brings podinfo's real kustomize base as its manifests/ folder."""
    if not REALWORLD.is_dir():
        pytest.skip("shared/realworld is not beside this checkout")
    shutil.copytree(REALWORLD / "backend", fleet.path / "services/api/manifests")
    fleet.replace(
        "cells/us-1.yaml",
        "  backend: local\n",
        "  backend: {type: kubernetes, context: kind-us, namespace: cell-us-1}\n",
    )
    before = fleet.commit("us-1 on kubernetes, api with podinfo manifests")
    source = GitSource(fleet.path)
    first = load_revision(source.snapshot(before))
    assert first.manifests_tree("api") == str(
        fleet.repo.revparse_single(f"{before}:services/api/manifests").id
    )
    fleet.replace(
        "services/api/manifests/deployment.yaml", "minReadySeconds: 3", "minReadySeconds: 5"
    )
    after = fleet.commit("tune podinfo")
    second = load_revision(source.snapshot(after))
    assert first.manifests_tree("api") != second.manifests_tree("api")
    assert first.app_tree("api") == second.app_tree("api")


def test_submodules_in_app_are_refused(fleet: FleetRepo) -> None:
    repo = fleet.repo
    index = repo.index
    index.add_all()
    index.add(
        pygit2.IndexEntry(
            "services/api/app/vendored", pygit2.Oid(hex="a" * 40), pygit2.enums.FileMode.COMMIT
        )
    )
    tree = index.write_tree()
    author = pygit2.Signature("t", "t@example.invalid")
    head = repo.create_commit("HEAD", author, author, "submodule", tree, [repo.head.target])
    problems = GitSource(fleet.path).snapshot(str(head)).problems
    assert [(p.file, "submodule" in p.message) for p in problems] == [
        ("services/api/app/vendored", True)
    ]
