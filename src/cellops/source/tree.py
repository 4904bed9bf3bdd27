"""The fleet layout, read from any tree of files: which files and folders make a snapshot.

`GitTree` and `DirTree` only list and read; this module knows the layout (DESIGN.md §2) and
what the source itself must refuse: symlinked or oversized documents, and in `app/` and
`manifests/` whatever could reach outside them once copied (`links.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from cellops.model.problems import Problem
from cellops.model.snapshot import FileBlob, Snapshot
from cellops.source.links import refused_entries
from cellops.source.nodes import Kind, Node, Tree

__all__ = ["Kind", "Node", "SubtreeMemo", "Tree", "build_snapshot"]

MAX_DOCUMENT_BYTES = 1 << 20  # fleet documents are small; a larger one is a mistake
# copied on their own: app/ for local cells; manifests/, a Helm chart and its values
# files for Kubernetes cells
SERVICE_TREES = ("app", "manifests", "chart", "values")


@dataclass
class _Part:
    """What one subtree contributes to a snapshot."""

    files: dict[str, FileBlob] = field(default_factory=dict)
    trees: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, other: _Part) -> None:
        self.files.update(other.files)
        self.trees.update(other.trees)
        self.problems += other.problems


class SubtreeMemo:
    """Parts of earlier snapshots by (path, subtree id): an unchanged `cells/` folder or
    service folder is not walked or read again. Bounded, oldest entries dropped first."""

    def __init__(self, limit: int = 20_000) -> None:
        self._parts: dict[tuple[str, str], _Part] = {}
        self._limit = limit

    def get(self, path: str, node: Node, build: Callable[[], _Part]) -> _Part:
        key = (path, node.id)
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = build()
            if len(self._parts) > self._limit:
                del self._parts[next(iter(self._parts))]
        return part


def build_snapshot(
    tree: Tree, revision: str, message: str = "", memo: SubtreeMemo | None = None
) -> Snapshot:
    memo = memo if memo is not None else SubtreeMemo()
    whole = _Part()
    top = {n.name: n for n in tree.children(tree.root())}
    if "cellops.yaml" in top:
        _document(tree, whole, "cellops.yaml", top["cellops.yaml"])
    for folder in ("cells", "tenants"):
        node = top.get(folder)
        if node is not None and node.kind is Kind.DIR:
            whole.add(memo.get(folder, node, partial(_documents, tree, folder, node)))
    services = top.get("services")
    if services is not None and services.kind is Kind.DIR:
        for node in tree.children(services):
            if not node.name.startswith(".") and not node.name.lower().startswith("readme"):
                path = f"services/{node.name}"
                whole.add(memo.get(path, node, partial(_service, tree, path, node)))
    return Snapshot(revision, whole.files, whole.trees, tuple(whole.problems), message)


def _documents(tree: Tree, name: str, folder: Node) -> _Part:
    """The documents of `cells/` or `tenants/` (one file each, no subfolders)."""
    part = _Part()
    for node in tree.children(folder):
        if not node.name.startswith("."):
            _document(tree, part, f"{name}/{node.name}", node)
    return part


def _document(tree: Tree, part: _Part, path: str, node: Node) -> None:
    if node.kind is Kind.LINK:
        why = "is a symlink: fleet documents must be regular files"
    elif node.kind is not Kind.FILE:
        why = f"expected a file, found a {node.kind}"
    elif (size := tree.size(node)) > MAX_DOCUMENT_BYTES:
        why = f"is {size} bytes: fleet documents are limited to {MAX_DOCUMENT_BYTES} bytes"
    else:
        part.files[path] = FileBlob(node.id, tree.read(node))
        return
    part.problems.append(Problem(path, None, "", why))


def _service(tree: Tree, path: str, folder: Node) -> _Part:
    part = _Part()
    if folder.kind is not Kind.DIR:
        part.problems.append(Problem(path, None, "", "expected a folder services/<name>/"))
        return part
    part.trees[path] = folder.id
    for child in tree.children(folder):
        if child.name == "service.yaml":
            _document(tree, part, f"{path}/service.yaml", child)
        elif child.name in SERVICE_TREES:
            inner = f"{path}/{child.name}"
            if child.kind is not Kind.DIR:
                part.problems.append(Problem(inner, None, "", "expected a folder"))
                continue
            part.trees[inner] = child.id
            for relative, why in refused_entries(tree, child, child.name):
                part.problems.append(Problem(f"{inner}/{relative}", None, "", why))
    return part
