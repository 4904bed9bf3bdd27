"""A tree of files as the sources see it: Git commits and plain folders alike."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


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
