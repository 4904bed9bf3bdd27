"""A fleet repo read through the `git` program: the everyday commands' fast start.

Importing pygit2 (libgit2, OpenSSL and its enums) costs about 100 ms, a third of what
`cellops validate` may take in all; one `git cat-file --batch-command` process answers
the same questions in a few. It reads only: the controller, exports and commits keep
pygit2 (`git.py`). `open_local` falls back to pygit2 when there is no `git` program or it
cannot open the folder, so every refusal (not a repository, unsafe ownership) reads as
before. Tests check that both give the same snapshot of every example and bad revision.
"""

from __future__ import annotations

import contextlib
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

_KINDS = {0o120000: Kind.LINK, 0o160000: Kind.OTHER}  # by the mode's type bits


def open_local(path: str | Path) -> GitCliSource | GitSource:
    """The repository at (or above) `path`, read by `git` when it can, else by pygit2
    (also when this `git` is older than 2.36, which has no `cat-file --batch-command`)."""
    git = shutil.which("git")
    if git is not None:
        done = _run([git, "-C", str(path), "rev-parse", "--absolute-git-dir"])
        if done.returncode == 0:
            git_dir = Path(os.fsdecode(done.stdout.removesuffix(b"\n")))
            source = GitCliSource(Path(path), git_dir, git)
            if source.answers():
                return source
    from cellops.source.git import GitSource

    return GitSource(path)


# Whatever a repository's own config says, `git` runs no program for us here and fetches
# nothing (pygit2 would do neither): no fsmonitor hook (an index name such as `:cells`
# reads the index), and no lazy fetch of a missing object from a promisor remote, whose
# `uploadpack` or `sshCommand` would run. GIT_NO_LAZY_FETCH needs git 2.44; before it,
# the fetch is started but allowed no transport at all.
_SAFE = ["-c", "core.fsmonitor=false"]
_SAFE_ENV = {"GIT_NO_REPLACE_OBJECTS": "1", "GIT_NO_LAZY_FETCH": "1", "GIT_ALLOW_PROTOCOL": ""}


def _environment() -> dict[str, str]:
    """Git's own variables dropped (GIT_DIR and the like would make `git` read another
    repository than pygit2 does), replace refs ignored (as libgit2 ignores them), and
    no lazy fetch (`_SAFE_ENV`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return env | _SAFE_ENV


def _run(command: list[str]) -> subprocess.CompletedProcess[bytes]:
    command = [command[0], *_SAFE, *command[1:]]
    return subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, env=_environment(), check=False
    )


class _CatFile:
    """One `git cat-file --batch-command` process: objects by name, one at a time."""

    def __init__(self, git: str, git_dir: Path) -> None:
        self._process = subprocess.Popen(
            [git, *_SAFE, "--git-dir", str(git_dir), "cat-file", "--batch-command"],
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
        try:
            self._process.stdin.write(f"{command} {name}\n".encode())
            self._process.stdin.flush()
            answer = self._process.stdout.readline()
        except (OSError, ValueError):  # a broken pipe; or closed after an earlier one
            answer = b""
        if not answer.endswith(b"\n"):
            raise self._gone()
        line = answer.split()
        if len(line) != 3 or not line[2].isdigit():
            return None  # "<name> missing", "<name> ambiguous"
        return line[0].decode(), line[1].decode(), int(line[2])

    def _gone(self) -> SourceError:
        code = self._process.poll()
        if code is None:  # it answered nonsense, or closed its output: not to be trusted
            self._process.kill()
            code = self._process.wait()
        return SourceError(f"git cat-file stopped (exit status {code}) while reading the repo")

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
    """End the process and reap it (no zombie), whatever state its pipes are in."""
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):  # a broken pipe: it has gone already
                pipe.close()
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
        return _entries(found[2], len(node.id) // 2, node.id)

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


def _entries(data: bytes, width: int, tree_id: str) -> list[Node]:
    """A tree object's entries: `<mode> <name>\\0<id as `width` bytes>`, one after another.
    A malformed one (which libgit2 refuses too) makes the tree unreadable."""
    nodes, at = [], 0
    while at < len(data):
        space = data.find(b" ", at)
        nul = data.find(b"\0", space + 1) if space > at else -1
        if nul <= space + 1 or nul + 1 + width > len(data):
            raise SourceError(f"git: tree {tree_id} is malformed (entry at byte {at})")
        mode, name = data[at:space], data[space + 1 : nul].decode("utf-8", "surrogateescape")
        oid = data[nul + 1 : nul + 1 + width].hex()
        nodes.append(Node(name, _kind(mode, tree_id), oid, oid))
        at = nul + 1 + width
    return nodes


def _kind(mode: bytes, tree_id: str) -> Kind:
    """An entry's kind from its octal mode, as libgit2 reads it (its filemode normalised:
    any mode of the tree type is a folder, then any with an execute bit a file, then the
    submodule and link types, and anything else a file)."""
    if not mode or any(c not in b"01234567" for c in mode):
        raise SourceError(f"git: tree {tree_id} has an entry of mode {mode!r}")
    value = int(mode, 8)
    if value > 0xFFFF:
        raise SourceError(f"git: tree {tree_id} has an entry of mode {mode!r}")
    if value & 0o170000 == 0o040000:
        return Kind.DIR
    if value & 0o111:
        return Kind.FILE
    return _KINDS.get(value & 0o170000, Kind.FILE)


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
        tree=fields[b"tree"][0].decode(),  # `^{commit}` peels only what git could parse
        parents=tuple(p.decode() for p in fields.get(b"parent", [])),
        time=float(committer[1]) if committer[1:2] and committer[1].isdigit() else 0.0,
        message=_message(message, fields.get(b"encoding", [b"utf-8"])[0]),
    )


def _message(raw: bytes, encoding: bytes) -> str:
    """A commit message as pygit2 gives it: up to a NUL, in the commit's own encoding
    (its `encoding` header; UTF-8 when it names none Python knows), bad bytes replaced."""
    raw = raw.partition(b"\0")[0]
    try:
        return raw.decode(encoding.decode("ascii"), "replace")
    except (LookupError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


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

    def answers(self) -> bool:
        """Whether `git cat-file --batch-command` runs here (git 2.36 or later)."""
        try:
            self._cat.header("info", "HEAD")
        except SourceError:
            return False
        return True

    def parent(self, rev: str) -> str | None:
        """The first parent, as Git and libgit2 see it: a shallow clone's oldest commit,
        or one that `info/grafts` cuts off, has none."""
        commit = self._read_commit(rev)
        found = self._cat.header("info", f"{commit.id}^1")  # grafts and shallow applied
        if found is not None or not commit.parents:
            return found[0] if found is not None else None
        if self._cat.header("info", commit.parents[0]) is not None or self._shallow(commit.id):
            return None  # the history is cut there on purpose
        raise SourceError(
            f"{self.path}: commit {commit.id[:12]}'s parent {commit.parents[0][:12]} is"
            " missing: the repository is damaged (see `git fsck`)"
        )

    def _shallow(self, commit: str) -> bool:
        """Whether `commit` is where a shallow clone's history stops."""
        asked = [self._git, "--git-dir", str(self._git_dir), "rev-parse", "--git-path", "shallow"]
        path = Path(os.fsdecode(_run(asked).stdout.removesuffix(b"\n")))
        try:  # absolute, as --git-dir is; else relative to here, as `git` ran here
            return path.name == "shallow" and commit.encode() in path.read_bytes().split()
        except OSError:
            return False

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
