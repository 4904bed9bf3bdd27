"""What a folder copied on its own (a service's `app/` or `manifests/`) may hold.

Each folder is exported alone: `app/` is what a local replica runs, `manifests/` what
`kubectl kustomize` builds. So a symlink in it must lead somewhere inside it once written
to disk. Each link is resolved the way the kernel resolves a path: component by
component, following every link met on the way (`l2 -> l1/..` where `l1 -> ..` leaves
the folder although neither target alone looks like it does). A `..` above the folder,
an absolute target, a loop or a chain longer than the kernel allows is refused. Names
that would write outside the folder (`..`, `a/b`), submodules and special files too.

Pure: reads through the `Tree` it is given.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from cellops.source.nodes import Kind, Node, Tree

MAX_LINKS = 40  # the kernel's limit on links followed in one path (ELOOP)
MAX_TARGET = 4095  # PATH_MAX, less its terminating NUL


@dataclass
class _Listing:
    targets: dict[str, str] = field(default_factory=dict)  # link path -> its target
    refused: list[tuple[str, str]] = field(default_factory=list)


def refused_entries(tree: Tree, root: Node, folder: str) -> list[tuple[str, str]]:
    """(path relative to `root`, why) of each entry that cannot be copied out safely.

    `folder` names the root in messages (`app`, `manifests`)."""
    listing = _list(tree, root)
    for link, target in listing.targets.items():
        why = _escapes(listing.targets, link, target)
        if why is not None:
            listing.refused.append((link, f"symlink to {target!r} {why}: {_rule(folder)}"))
    return sorted(listing.refused)


def _rule(folder: str) -> str:
    return f"a link in {folder}/ must point inside {folder}/, which is copied on its own"


def _list(tree: Tree, root: Node) -> _Listing:
    """Every link (with its target) and every refused entry under `root`, iteratively:
    a hostile commit may nest folders deeper than Python's recursion limit."""
    listing = _Listing()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, rel = stack.pop()
        for child in tree.children(node):
            path = f"{rel}/{child.name}" if rel else child.name
            if child.name in ("", ".", "..") or "/" in child.name or "\0" in child.name:
                listing.refused.append((path, f"{child.name!r} is not a valid file name"))
            elif child.kind is Kind.DIR:
                stack.append((child, path))
            elif child.kind is Kind.OTHER:
                listing.refused.append((path, "is a submodule or special file: not supported"))
            elif child.kind is Kind.LINK:
                _add_link(tree, child, path, listing)
    return listing


def _add_link(tree: Tree, node: Node, path: str, listing: _Listing) -> None:
    if tree.size(node) > MAX_TARGET:
        listing.refused.append((path, f"symlink target is longer than {MAX_TARGET} bytes"))
        return
    try:
        target = tree.read(node).decode("utf-8")
    except UnicodeDecodeError:
        listing.refused.append((path, "symlink target is not UTF-8 text"))
        return
    if "\0" in target or not target:
        listing.refused.append((path, f"symlink target {target!r} is not a path"))
        return
    listing.targets[path] = target


def _escapes(targets: dict[str, str], link: str, target: str) -> str | None:
    """Why `link` leads outside the folder, or None when it stays inside.

    Components after a missing entry or a file are taken lexically (`missing/../..`
    climbs two levels): the kernel would fail there, kustomize's path cleaning would
    not, and a refusal errs on the safe side."""
    current = link.split("/")[:-1]
    pending = deque(target.split("/"))
    chain = [link]
    if target.startswith("/"):
        return "is absolute"
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not current:
                via = f" (through {', '.join(chain[1:])})" if len(chain) > 1 else ""
                return f"leads outside the folder{via}"
            current.pop()
            continue
        candidate = "/".join([*current, part])
        onward = targets.get(candidate)
        if onward is None:
            current.append(part)
            continue
        if len(chain) > MAX_LINKS:
            return f"is a loop or a chain of more than {MAX_LINKS} links"
        if onward.startswith("/"):
            return f"leads to an absolute path (through {candidate} -> {onward!r})"
        chain.append(candidate)
        pending.extendleft(reversed(onward.split("/")))
    return None
