"""A service's folder (`manifests/`, `chart/`, `values/`) written out on its own, from a
plain folder as `export_tree` writes it from a commit: the same files, the same refusals
(links leading out, invalid names, special files), read-only, complete or absent. So
`validate --path` and `validate` of a commit build from the same tree: a kustomization
that reaches outside the folder (`../bases`) finds nothing in either, and is refused the
same way.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cellops.model.errors import SourceError
from cellops.source.links import refused_entries
from cellops.source.nodes import Kind, Node, Tree
from cellops.source.tree import SERVICE_TREES
from cellops.source.worktree import DirTree


def export_worktree(root: Path, tree_id: str, target: Path) -> None:
    """Write the service folder of the fleet folder `root` whose tree id (as Git would
    compute it) is `tree_id` into `target`."""
    tree = DirTree(root)
    node = _find(tree, tree_id)
    if node is None:
        raise SourceError(f"{root}: no service folder with tree id {tree_id[:12]}")
    write_tree(tree, node, target)


def write_tree(tree: Tree, top: Node, target: Path) -> None:
    """`top` and all below it into `target`, through a temporary sibling."""
    refused = refused_entries(tree, top, target.name)
    if refused:
        path, why = refused[0]
        raise SourceError(f"cannot export {target.name}/: {path} {why}")
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    pending = [(top, staging)]
    while pending:  # iterative: a folder may nest deeper than the recursion limit
        node, folder = pending.pop()
        folder.mkdir(parents=True)
        for child in tree.children(node):
            written = folder / child.name
            if child.kind is Kind.DIR:
                pending.append((child, written))
            elif child.kind is Kind.LINK:
                os.symlink(tree.read(child).decode(), written)
            elif child.kind is Kind.FILE:
                written.write_bytes(tree.read(child))
                written.chmod(0o444)
    try:
        staging.rename(target)
    except OSError:  # another exporter won the race; its copy is identical
        shutil.rmtree(staging, ignore_errors=True)


def _find(tree: DirTree, tree_id: str) -> Node | None:
    services = next((n for n in tree.children(tree.root()) if n.name == "services"), None)
    if services is None or services.kind is not Kind.DIR:
        return None
    for service in tree.children(services):
        if service.kind is not Kind.DIR:
            continue
        for child in tree.children(service):
            if child.name in SERVICE_TREES and child.kind is Kind.DIR and child.id == tree_id:
                return child
    return None
