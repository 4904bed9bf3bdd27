"""A fleet repo read through the `git` program: the everyday commands' fast start.

Importing pygit2 (libgit2, OpenSSL and its enums) costs about 100 ms, a third of what
`cellops validate` may take in all; one `git cat-file --batch-command` process answers
the same questions in a few. It reads only: the controller, exports and commits keep
pygit2 (`git.py`). `open_local` falls back to pygit2 when there is no `git` program or it
cannot open the folder, so every refusal (not a repository, unsafe ownership) reads as
before. Tests check that both give the same snapshot of every example and bad revision.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import weakref
from pathlib import Path
from typing import IO, TYPE_CHECKING

from cellops.model.errors import SourceError
from cellops.model.snapshot import Snapshot
from cellops.source.nodes import Kind, Node
from cellops.source.tree import SubtreeMemo, build_snapshot

if TYPE_CHECKING:
    from cellops.source.git import GitSource

_KINDS = {b"40000": Kind.DIR, b"120000": Kind.LINK, b"160000": Kind.OTHER}


def open_local(path: str | Path) -> GitCliSource | GitSource:
    """The repository at (or above) `path`, read by `git` when it can, else by pygit2."""
    git = shutil.which("git")
    if git is not None:
        done = _run([git, "-C", str(path), "rev-parse", "--absolute-git-dir"])
        if done.returncode == 0:
            return GitCliSource(Path(path), Path(done.stdout.decode().strip()), git)
    from cellops.source.git import GitSource

    return GitSource(path)


def _environment() -> dict[str, str]:
    """Git's own variables dropped (GIT_DIR and the like would make `git` read another
    repository than pygit2 does), and replace refs ignored, as libgit2 ignores them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_NO_REPLACE_OBJECTS"] = "1"
    return env


def _run(command: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command, capture_output=True, env=_environment(), check=False)


class _CatFile:
    """One `git cat-file --batch-command` process: objects by name, one at a time."""

    def __init__(self, git: str, git_dir: Path) -> None:
        self._process = subprocess.Popen(
            [git, "--git-dir", str(git_dir), "cat-file", "--batch-command"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_environment(),
        )
        weakref.finalize(self, _stop, self._process)

    def header(self, command: str, name: str) -> tuple[str, str, int] | None:
        """(id, type, size) of the object `name`, or None when there is none."""
        assert self._process.stdin is not None and self._process.stdout is not None
        if not name or any(c.isspace() or not c.isprintable() for c in name):
            return None  # one name per line: no name may carry a second command
        self._process.stdin.write(f"{command} {name}\n".encode())
        self._process.stdin.flush()
        line = self._process.stdout.readline().split()
        if len(line) != 3 or not line[2].isdigit():
            return None  # "<name> missing", "<name> ambiguous", or git has gone
        return line[0].decode(), line[1].decode(), int(line[2])

    def contents(self, name: str) -> tuple[str, str, bytes] | None:
        """(id, type, content) of the object `name`, or None when there is none."""
        found = self.header("contents", name)
        if found is None:
            return None
        stdout = self._process.stdout
        assert stdout is not None
        data = _read_exactly(stdout, found[2] + 1)[:-1]  # and the newline after it
        return found[0], found[1], data


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise SourceError("git cat-file stopped in the middle of an object")
    return data


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    if process.stdout is not None:
        process.stdout.close()
    process.wait()


class CliTree:
    """The `Tree` of one commit, read object by object."""

    def __init__(self, cat: _CatFile, tree_id: str) -> None:
        self._cat = cat
        self._tree_id = tree_id

    def root(self) -> Node:
        return Node("", Kind.DIR, self._tree_id, self._tree_id)

    def children(self, node: Node) -> list[Node]:
        found = self._cat.contents(node.id)
        if found is None or found[1] != "tree":
            raise SourceError(f"git: cannot read tree {node.id}")
        return list(_entries(found[2], len(node.id) // 2))

    def size(self, node: Node) -> int:
        found = self._cat.header("info", node.id)
        if found is None:
            raise SourceError(f"git: cannot read blob {node.id}")
        return found[2]

    def read(self, node: Node) -> bytes:
        found = self._cat.contents(node.id)
        if found is None or found[1] != "blob":
            raise SourceError(f"git: cannot read blob {node.id}")
        return found[2]


def _entries(data: bytes, width: int) -> list[Node]:
    """A tree object's entries: `<mode> <name>\\0<id as `width` bytes>`, one after another."""
    nodes, at = [], 0
    while at < len(data):
        space = data.index(b" ", at)
        nul = data.index(b"\0", space)
        mode, name = data[at:space], data[space + 1 : nul].decode("utf-8", "surrogateescape")
        oid = data[nul + 1 : nul + 1 + width].hex()
        kind = Kind.FILE if mode.startswith(b"100") else _KINDS.get(mode, Kind.OTHER)
        nodes.append(Node(name, kind, oid, oid))
        at = nul + 1 + width
    return nodes


@dataclasses.dataclass(frozen=True)
class _Commit:
    id: str
    tree: str
    parents: tuple[str, ...]
    time: float
    message: str


def _commit(oid: str, data: bytes) -> _Commit:
    head, _, message = data.partition(b"\n\n")
    fields: dict[bytes, list[bytes]] = {}
    for line in head.split(b"\n"):
        if line[:1] != b" ":  # a continued header (a signature) starts with a space
            key, _, value = line.partition(b" ")
            fields.setdefault(key, []).append(value)
    committer = fields.get(b"committer", [b"? 0 +0000"])[0].rsplit(b" ", 2)
    return _Commit(
        id=oid,
        tree=fields[b"tree"][0].decode(),
        parents=tuple(p.decode() for p in fields.get(b"parent", [])),
        time=float(committer[1]) if committer[1:2] and committer[1].isdigit() else 0.0,
        message=message.decode("utf-8", "replace"),
    )


class GitCliSource:
    """A local Git repository holding a fleet, read through `git`."""

    def __init__(self, path: Path, git_dir: Path, git: str) -> None:
        self.path = path
        self._git_dir = git_dir
        self._git = git
        self._cat = _CatFile(git, git_dir)
        self._memo = SubtreeMemo()

    @property
    def root(self) -> Path:
        """The repository's Git directory."""
        return self._git_dir

    def refresh(self) -> None:
        """Bring in new commits; a local repository has them already."""

    def resolve(self, rev: str) -> str:
        return self._read_commit(rev).id

    def parent(self, rev: str) -> str | None:
        parents = self._read_commit(rev).parents
        return parents[0] if parents else None

    def snapshot(self, rev: str = "HEAD") -> Snapshot:
        commit = self._read_commit(rev)
        tree = CliTree(self._cat, commit.tree)
        snapshot = build_snapshot(tree, commit.id, commit.message.strip(), self._memo)
        return dataclasses.replace(snapshot, committed_at=commit.time)

    def _read_commit(self, rev: str) -> _Commit:
        found = self._cat.contents(f"{rev}^{{commit}}")
        if found is not None and found[1] == "commit":
            return _commit(found[0], found[2])
        head = [self._git, "--git-dir", str(self._git_dir), "rev-parse", "-q", "--verify", "HEAD"]
        if _run(head).returncode:
            raise no_commits_yet(self.path)
        raise SourceError(f"{self.path}: unknown revision {rev!r}")


def no_commits_yet(path: Path) -> SourceError:
    return SourceError(
        f"{path}: the repository has no commits yet: commit the fleet files"
        " (git add -A && git commit), or validate them as they are with"
        " `cellops validate --path`"
    )
