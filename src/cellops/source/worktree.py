"""A fleet in a plain directory (no commit needed), for quick checks while editing.

Content ids are computed exactly as Git computes blob and tree ids, so a clean working
copy yields the same app/ identity as its commit.
"""

from __future__ import annotations

import hashlib
import os
import stat
from functools import cache
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
    _tree_id.cache_clear()
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


@cache
def _tree_id(path: str) -> str:
    """Git's tree id: entries sorted by name (folders as 'name/'), mode, name, raw id."""
    entries = []
    for name in os.listdir(path):
        if name in _SKIP:
            continue
        full = os.path.join(path, name)
        mode = os.lstat(full).st_mode
        if stat.S_ISLNK(mode):
            entries.append((name, b"120000", _blob_id(os.readlink(full).encode())))
        elif stat.S_ISDIR(mode):
            if os.listdir(full):  # Git does not record empty folders
                entries.append((name + "/", b"40000", _tree_id(full)))
        elif stat.S_ISREG(mode):
            exe = b"100755" if mode & stat.S_IXUSR else b"100644"
            entries.append((name, exe, _file_id(full)))
    body = b"".join(
        mode + b" " + name.rstrip("/").encode() + b"\0" + bytes.fromhex(oid)
        for name, mode, oid in sorted(entries, key=lambda e: e[0].encode())
    )
    return hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()
