"""The fleet layout, read from any tree of files: which files and folders make a snapshot.

`GitTree` and `DirTree` only list and read; this module knows the layout (DESIGN.md §2) and
what the source itself must refuse: symlinked or oversized documents, links that escape.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from cellops.model.problems import Problem
from cellops.model.snapshot import FileBlob, Snapshot

MAX_DOCUMENT_BYTES = 1 << 20  # fleet documents are small; a larger one is a mistake
SERVICE_TREES = ("app", "manifests")


class Kind(StrEnum):
    FILE = "file"
    DIR = "dir"
    LINK = "link"
    OTHER = "other"  # submodules, sockets, devices


@dataclass(frozen=True)
class Node:
    name: str
    kind: Kind
    id: str  # content id: Git object id, or the same hash computed from the disk
    handle: object


class Tree(Protocol):
    def root(self) -> Node: ...
    def children(self, node: Node) -> list[Node]: ...
    def size(self, node: Node) -> int: ...
    def read(self, node: Node) -> bytes: ...


def build_snapshot(
    tree: Tree, revision: str, message: str = "", link_memo: dict[str, list[str]] | None = None
) -> Snapshot:
    reader = _Reader(tree, link_memo if link_memo is not None else {})
    top = {n.name: n for n in tree.children(tree.root())}
    if "cellops.yaml" in top:
        reader.document("cellops.yaml", top["cellops.yaml"])
    if "cells" in top and top["cells"].kind is Kind.DIR:
        for node in tree.children(top["cells"]):
            if not node.name.startswith("."):
                reader.document(f"cells/{node.name}", node)
    if "services" in top and top["services"].kind is Kind.DIR:
        for node in tree.children(top["services"]):
            reader.service(node)
    return Snapshot(revision, reader.files, reader.trees, tuple(reader.problems), message)


class _Reader:
    def __init__(self, tree: Tree, link_memo: dict[str, list[str]]) -> None:
        self.tree = tree
        self.files: dict[str, FileBlob] = {}
        self.trees: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.link_memo = link_memo

    def document(self, path: str, node: Node) -> None:
        if node.kind is Kind.LINK:
            self.problems.append(
                Problem(path, None, "", "is a symlink: fleet documents must be regular files")
            )
        elif node.kind is not Kind.FILE:
            self.problems.append(Problem(path, None, "", f"expected a file, found a {node.kind}"))
        elif (size := self.tree.size(node)) > MAX_DOCUMENT_BYTES:
            self.problems.append(
                Problem(
                    path,
                    None,
                    "",
                    (f"is {size} bytes: fleet documents are limited to {MAX_DOCUMENT_BYTES} bytes"),
                )
            )
        else:
            self.files[path] = FileBlob(node.id, self.tree.read(node))

    def service(self, node: Node) -> None:
        path = f"services/{node.name}"
        if node.name.startswith(".") or node.name.lower().startswith("readme"):
            return
        if node.kind is not Kind.DIR:
            self.problems.append(Problem(path, None, "", "expected a folder services/<name>/"))
            return
        self.trees[path] = node.id
        for child in self.tree.children(node):
            if child.name == "service.yaml":
                self.document(f"{path}/service.yaml", child)
            elif child.name in SERVICE_TREES:
                self._service_tree(f"{path}/{child.name}", child)

    def _service_tree(self, path: str, node: Node) -> None:
        if node.kind is not Kind.DIR:
            self.problems.append(Problem(path, None, "", "expected a folder"))
            return
        self.trees[path] = node.id
        if node.id not in self.link_memo:
            self.link_memo[node.id] = _escaping(self.tree, node, posixpath.basename(path))
        for inner, why in (s.split("\0") for s in self.link_memo[node.id]):
            self.problems.append(Problem(f"{path}/{inner}", None, "", why))


def _escaping(tree: Tree, root: Node, root_name: str) -> list[str]:
    """Paths (relative to root) of links that leave the service folder, and submodules."""
    found: list[str] = []

    def walk(node: Node, rel: str) -> None:
        for child in tree.children(node):
            child_rel = posixpath.join(rel, child.name) if rel else child.name
            if child.kind is Kind.DIR:
                walk(child, child_rel)
            elif child.kind is Kind.LINK:
                target = tree.read(child).decode("utf-8", "replace")
                # the service folder is the parent of root; links may point anywhere inside it
                resolved = posixpath.normpath(posixpath.join(root_name, rel, target))
                if target.startswith("/") or resolved.startswith(".."):
                    found.append(f"{child_rel}\0symlink to {target!r} leaves the service folder")
            elif child.kind is Kind.OTHER:
                found.append(f"{child_rel}\0is a submodule or special file: not supported")

    walk(root, "")
    return found
