"""Reading fleets from Git (pygit2) and from a directory: same content ids, same refusals."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pygit2
import pytest

from cellops.model.errors import SourceError
from cellops.source.git import GitSource, export_tree
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


def link(fleet: FleetRepo, relative: str, target: str) -> None:
    path = fleet.path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def test_links_that_stay_inside_their_folder_are_fine(fleet: FleetRepo, tmp_path: Path) -> None:
    fleet.write("services/api/app/conf/base.yaml", "a: 1\n")
    link(fleet, "services/api/app/current", "conf")  # a folder
    link(fleet, "services/api/app/conf/here", "../main.py")  # up and back down
    link(fleet, "services/api/app/chain", "current/here")  # through two links
    link(fleet, "services/api/app/dangling", "not-yet/../main.py")
    link(fleet, "services/api/manifests/deployment.yaml", "base/deployment.yaml")
    fleet.write("services/api/manifests/base/deployment.yaml", "kind: x\n")
    head = fleet.commit("links inside app/ and manifests/")
    assert GitSource(fleet.path).snapshot(head).problems == ()
    assert read_worktree(fleet.path).problems == ()
    # the exported copy keeps them, and they work
    target = tmp_path / "exported"
    export_tree(fleet.path, GitSource(fleet.path).snapshot(head).trees["services/api/app"], target)
    assert (target / "chain").read_text() == (fleet.path / "services/api/app/main.py").read_text()


ESCAPES = {
    "parent": {"services/api/app/up": ".."},
    "to the service file": {"services/api/app/spec": "../service.yaml"},
    "absolute": {"services/api/app/passwd": "/etc/passwd"},
    "relative to /etc/passwd": {"services/api/app/passwd": "../../../../../../../etc/passwd"},
    "chain": {  # each target alone stays inside; together they climb out
        "services/api/app/a/l1": "..",
        "services/api/app/a/l2": "l1/..",
        "services/api/app/a/l3": "l2/../..",
    },
    "chain through a folder link": {
        "services/api/app/deep/er/l1": "../..",
        "services/api/app/deep/er/l2": "l1/../er/l1/..",
    },
    "through a sibling service": {"services/api/app/store": "../../store/app/main.py"},
    "loop": {"services/api/app/x": "y", "services/api/app/y": "x"},
    "chain to an absolute link": {
        "services/api/manifests/root": "/",
        "services/api/manifests/etc": "root/etc",
    },
}


@pytest.mark.parametrize("links", list(ESCAPES.values()), ids=list(ESCAPES))
def test_links_leading_outside_their_folder_are_refused(
    fleet: FleetRepo, links: dict[str, str]
) -> None:
    for relative, target in links.items():
        link(fleet, relative, target)
    head = fleet.commit("links out")
    for snapshot in (GitSource(fleet.path).snapshot(head), read_worktree(fleet.path)):
        refused = {p.file: p.message for p in snapshot.problems}
        assert refused, links
        assert set(refused) <= set(links)
        for file, message in refused.items():
            assert f"symlink to {links[file]!r}" in message
            assert "must point inside" in message


def test_the_last_link_of_a_chain_names_the_links_it_went_through(fleet: FleetRepo) -> None:
    for relative, target in ESCAPES["chain"].items():
        link(fleet, relative, target)
    problems = GitSource(fleet.path).snapshot(fleet.commit("chain")).problems
    messages = {p.file.removeprefix("services/api/app/"): p.message for p in problems}
    assert sorted(messages) == ["a/l2", "a/l3"]  # l1 -> .. is app/ itself
    assert "leads outside the folder (through a/l2, a/l1)" in messages["a/l3"]


def test_export_refuses_a_tree_that_leads_outside(fleet: FleetRepo, tmp_path: Path) -> None:
    """The last line: even a tree no validation saw cannot be written out with a way out."""
    link(fleet, "services/api/app/l1", "..")
    link(fleet, "services/api/app/l2", "l1/../../../secret")
    (tmp_path / "secret").write_text("outside\n")
    head = fleet.commit("a way out")
    tree = str(fleet.repo.revparse_single(f"{head}:services/api/app").id)
    with pytest.raises(SourceError, match="cannot export tree"):
        export_tree(fleet.path, tree, tmp_path / "app")
    assert not (tmp_path / "app").exists()


def graft(fleet: FleetRepo, where: str, tree: pygit2.Oid) -> str:
    """Commit HEAD's tree with `tree` put at `where` (libgit2's index refuses deep folders)."""
    repo = fleet.repo
    parts = where.split("/")
    for depth in range(len(parts), 0, -1):
        parent = repo.revparse_single(
            "HEAD^{tree}" if depth == 1 else f"HEAD:{'/'.join(parts[: depth - 1])}"
        )
        builder = repo.TreeBuilder(parent)
        builder.insert(parts[depth - 1], tree, pygit2.enums.FileMode.TREE)
        tree = builder.write()
    author = pygit2.Signature("t", "t@example.invalid")
    return str(repo.create_commit("HEAD", author, author, "graft", tree, [repo.head.target]))


def test_deeply_nested_folders_are_walked_and_exported(fleet: FleetRepo, tmp_path: Path) -> None:
    repo = fleet.repo
    builder = repo.TreeBuilder()
    builder.insert("f.txt", repo.create_blob(b"deep\n"), pygit2.enums.FileMode.BLOB)
    tree = builder.write()
    for _ in range(1_200):  # deeper than Python's recursion limit
        builder = repo.TreeBuilder()
        builder.insert("d", tree, pygit2.enums.FileMode.TREE)
        tree = builder.write()
    head = graft(fleet, "services/api/app/deep", tree)
    snapshot = GitSource(fleet.path).snapshot(head)
    assert snapshot.problems == ()
    try:
        export_tree(fleet.path, snapshot.trees["services/api/app"], tmp_path / "app")
        deep = "/".join(["d"] * 1_200)
        assert (tmp_path / "app" / "deep" / deep / "f.txt").read_text() == "deep\n"
        # the same folder on disk, read as it is, has the same identity
        export_tree(fleet.path, str(tree), fleet.path / "services/api/app/deep")
        assert read_worktree(fleet.path).trees == snapshot.trees
    finally:  # shutil.rmtree (and so pytest's cleanup) recurses: remove it here
        remove_deep(tmp_path / "app")
        remove_deep(fleet.path / "services/api/app/deep")


def remove_deep(top: Path) -> None:
    """Remove a folder of any depth, without recursion."""
    folders, pending = [], [str(top)] if top.is_dir() else []
    while pending:
        folders.append(folder := pending.pop())
        pending += [e.path for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    for folder in reversed(folders):
        for entry in os.scandir(folder):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
        os.rmdir(folder)


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
