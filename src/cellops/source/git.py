"""A fleet repo in Git, read with pygit2: resolve revisions, read the tree of a commit."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pygit2

from cellops.model.errors import SourceError
from cellops.model.snapshot import Snapshot
from cellops.source.gitcli import no_commits_yet
from cellops.source.links import refused_entries
from cellops.source.tree import Kind, Node, SubtreeMemo, build_snapshot

_KINDS = {
    pygit2.enums.FileMode.BLOB: Kind.FILE,
    pygit2.enums.FileMode.BLOB_EXECUTABLE: Kind.FILE,
    pygit2.enums.FileMode.TREE: Kind.DIR,
    pygit2.enums.FileMode.LINK: Kind.LINK,
}
_FILES = (pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.BLOB_EXECUTABLE)


class GitTree:
    """The `Tree` of one commit."""

    def __init__(self, repo: pygit2.Repository, tree: pygit2.Tree) -> None:
        self._repo = repo
        self._tree = tree

    def root(self) -> Node:
        return Node("", Kind.DIR, str(self._tree.id), self._tree)

    def children(self, node: Node) -> list[Node]:
        tree = node.handle
        assert isinstance(tree, pygit2.Tree)
        return [
            Node(entry.name or "", _KINDS.get(entry.filemode, Kind.OTHER), str(entry.id), entry)
            for entry in tree
        ]

    def size(self, node: Node) -> int:
        return int(self._blob(node).size)

    def read(self, node: Node) -> bytes:
        return bytes(self._blob(node).data)

    def _blob(self, node: Node) -> pygit2.Blob:
        obj = node.handle
        assert isinstance(obj, pygit2.Blob)
        return obj


class GitSource:
    """A local Git repository holding a fleet."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        found = pygit2.discover_repository(str(self.path))
        if found is None:
            raise SourceError(
                f"{self.path}: not a Git repository (run 'git init' or 'cellops init')"
            )
        try:
            self._repo = pygit2.Repository(found)
        except pygit2.GitError as exc:  # another user's repository, a damaged one
            hint = " (if you trust it: git config --global --add safe.directory PATH)"
            why = f"{self.path}: {exc}" + (hint if "owned" in str(exc) else "")
            raise SourceError(why) from None
        self._memo = SubtreeMemo()

    @property
    def root(self) -> Path:
        """The repository's Git directory."""
        return Path(self._repo.path)

    def refresh(self) -> None:
        """Bring in new commits; a local repository has them already."""

    def resolve(self, rev: str) -> str:
        """The commit id that `rev` (a branch, tag, 'HEAD~2', an id) names."""
        return str(self._commit(rev).id)

    def parent(self, rev: str) -> str | None:
        parents = self._commit(rev).parents
        return str(parents[0].id) if parents else None

    def snapshot(self, rev: str = "HEAD") -> Snapshot:
        commit = self._commit(rev)
        tree = GitTree(self._repo, commit.tree)
        snapshot = build_snapshot(tree, str(commit.id), commit.message.strip(), self._memo)
        return dataclasses.replace(snapshot, committed_at=float(commit.commit_time))

    def _commit(self, rev: str) -> pygit2.Commit:
        try:
            obj = self._repo.revparse_single(rev)
            commit = obj.peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError) as exc:
            if self._repo.head_is_unborn:
                raise no_commits_yet(self.path) from exc
            raise SourceError(f"{self.path}: unknown revision {rev!r}") from exc
        assert isinstance(commit, pygit2.Commit)
        return commit


def create_repository(path: Path, message: str) -> str:
    """`git init` at `path` and commit everything in it; returns the commit id."""
    pygit2.init_repository(str(path), initial_head="main")
    return commit_all(path, message)


def commit_all(path: Path, message: str) -> str:
    """Commit the whole working tree of the repo at `path` (like `git add -A && git commit`)."""
    repo = pygit2.Repository(str(path))
    try:
        author = repo.default_signature
    except (KeyError, pygit2.GitError):  # no user.name/user.email configured
        author = pygit2.Signature("cellops", "cellops@localhost")
    repo.index.add_all()
    repo.index.write()
    tree = repo.index.write_tree()
    parents = [] if repo.head_is_unborn else [repo.head.target]
    return str(repo.create_commit("HEAD", author, author, message, tree, parents))


def export_tree(repo_path: Path, tree_id: str, target: Path) -> None:
    """Write the files of Git tree `tree_id` into `target` (which must not exist yet).

    Written to a temporary sibling and renamed, so `target` appears complete or not at
    all; content-addressed by tree id, an exported tree never changes afterwards. A tree
    holding anything that would reach outside `target` once written (a link leading out,
    a name like `..`) is refused whole: validation refuses such a revision first, this is
    the last line.
    """
    repo = pygit2.Repository(str(repo_path))
    tree = repo.get(tree_id)
    if not isinstance(tree, pygit2.Tree):
        raise SourceError(f"{repo_path}: no tree {tree_id}")
    view = GitTree(repo, tree)
    refused = refused_entries(view, view.root(), target.name)
    if refused:
        path, why = refused[0]
        raise SourceError(f"cannot export tree {tree_id[:12]}: {path} {why}")
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    _write_tree(repo, tree, staging)
    try:
        staging.rename(target)
    except OSError:  # another exporter won the race; its copy is identical
        shutil.rmtree(staging, ignore_errors=True)


def read_file(repo_path: Path, commit: str, path: str, limit: int) -> bytes | None:
    """The file at `path` in `commit` (a regular file of at most `limit` bytes), or None."""
    repo = pygit2.Repository(str(repo_path))
    try:
        entry = repo.revparse_single(commit).peel(pygit2.Tree)[path]
    except (KeyError, ValueError, pygit2.GitError):
        return None
    blob = repo.get(entry.id) if entry.filemode in _FILES else None  # never a symlink
    if not isinstance(blob, pygit2.Blob) or blob.size > limit:
        return None
    return bytes(blob.data)


def _write_tree(repo: pygit2.Repository, root: pygit2.Tree, top: Path) -> None:
    """Write `root` under `top`, iteratively (a commit may nest folders very deep)."""
    pending = [(root, top)]
    while pending:
        tree, folder = pending.pop()
        folder.mkdir(parents=True)
        for entry in tree:
            path = folder / (entry.name or "")
            obj = repo.get(entry.id)
            if entry.filemode == pygit2.enums.FileMode.TREE:
                assert isinstance(obj, pygit2.Tree)
                pending.append((obj, path))
            elif entry.filemode == pygit2.enums.FileMode.LINK:
                assert isinstance(obj, pygit2.Blob)
                os.symlink(obj.data.decode(), path)
            elif entry.filemode in _FILES:
                assert isinstance(obj, pygit2.Blob)
                path.write_bytes(obj.data)
                executable = entry.filemode == pygit2.enums.FileMode.BLOB_EXECUTABLE
                path.chmod(0o555 if executable else 0o444)
