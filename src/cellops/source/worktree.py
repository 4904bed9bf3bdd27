"""A fleet in a plain directory (no commit needed), for quick checks while editing.

Content ids are computed exactly as Git computes blob and tree ids, so a clean working
copy yields the same app/ identity as its commit.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cellops.model.errors import SourceError
from cellops.model.snapshot import Snapshot
from cellops.source.tree import Kind, Node, build_snapshot

_SKIP = {".git"}


class DirTree:
    def __init__(self, root: Path) -> None:
        self._root = root

    def root(self) -> Node:
        return Node("", Kind.DIR, _tree_id(str(self._root)), self._root)

    def children(self, node: Node) -> list[Node]:
        path = node.handle
        assert isinstance(path, Path)
        return [_node(path / name) for name in sorted(os.listdir(path)) if name not in _SKIP]

    def size(self, node: Node) -> int:
        return os.lstat(str(node.handle)).st_size

    def read(self, node: Node) -> bytes:
        path = str(node.handle)
        if node.kind is Kind.LINK:
            return os.readlink(path).encode()
        with open(path, "rb") as handle:
            return handle.read()


def read_worktree(path: str | Path) -> Snapshot:
    root = Path(path)
    if not root.is_dir():
        raise SourceError(f"{root}: no such directory")
    _tree_ids.clear()
    tree = DirTree(root)
    top = tree.root()
    return build_snapshot(tree, f"worktree:{top.id[:12]}")


def _node(path: Path) -> Node:
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        return Node(path.name, Kind.LINK, _blob_id(os.readlink(path).encode()), path)
    if stat.S_ISDIR(mode):
        return Node(path.name, Kind.DIR, _tree_id(str(path)), path)
    if stat.S_ISREG(mode):
        return Node(path.name, Kind.FILE, _file_id(str(path)), path)
    return Node(path.name, Kind.OTHER, "", path)


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _file_id(path: str) -> str:
    with open(path, "rb") as handle:
        return _blob_id(handle.read())


_tree_ids: dict[str, str] = {}  # folder -> Git tree id, for one read_worktree


def _tree_id(path: str) -> str:
    """Git's tree id: entries sorted by name (folders as 'name/'), mode, name, raw id.

    Folders are hashed after their subfolders, with an explicit stack: a folder may nest
    deeper than Python's recursion limit."""
    pending: list[tuple[str, list[tuple[str, bytes, str]] | None]] = [(path, None)]
    while pending:
        folder, entries = pending.pop()
        if folder in _tree_ids:
            continue
        if entries is None:
            entries = _entries(folder)
            pending.append((folder, entries))
            pending += [(full, None) for _, mode, full in entries if mode == b"40000"]
            continue
        body = b"".join(
            mode + b" " + name.encode() + b"\0" + bytes.fromhex(_id_of(mode, full))
            for name, mode, full in sorted(entries, key=_git_order)
        )
        oid = hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()
        _tree_ids[folder] = oid
    return _tree_ids[path]


def _entries(folder: str) -> list[tuple[str, bytes, str]]:
    """(name, Git mode, full path) of what Git would record in `folder`."""
    entries = []
    for name in os.listdir(folder):
        if name in _SKIP:
            continue
        full = os.path.join(folder, name)
        mode = os.lstat(full).st_mode
        if stat.S_ISLNK(mode):
            entries.append((name, b"120000", full))
        elif stat.S_ISDIR(mode):
            if os.listdir(full):  # Git does not record empty folders
                entries.append((name, b"40000", full))
        elif stat.S_ISREG(mode):
            entries.append((name, b"100755" if mode & stat.S_IXUSR else b"100644", full))
    return entries


def _git_order(entry: tuple[str, bytes, str]) -> bytes:
    name, mode, _ = entry
    return (name + "/" if mode == b"40000" else name).encode()


def _id_of(mode: bytes, full: str) -> str:
    if mode == b"40000":
        return _tree_ids[full]
    if mode == b"120000":
        return _blob_id(os.readlink(full).encode())
    return _file_id(full)
