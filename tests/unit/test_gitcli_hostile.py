"""The `git`-program reader (cellops.source.gitcli) against what pygit2 copes with: an
old `git`, a `git` that dies, a repository whose config would run programs, hand-made
tree and commit objects, shallow clones and grafts, a folder name that is not UTF-8."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cellops.model.errors import SourceError
from cellops.source.git import GitSource
from cellops.source.gitcli import GitCliSource, open_local
from tests.unit.test_gitcli import both, git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git program")


def _write(repo: Path, kind: str, data: bytes) -> str:
    """An object written as it is (`--literally`: git would refuse to make some)."""
    command = ["git", "-C", str(repo), "hash-object", "-w", "--literally", "-t", kind, "--stdin"]
    return (
        subprocess.run(command, input=data, capture_output=True, check=True).stdout.decode().strip()
    )


def _tree(repo: Path, *entries: tuple[bytes, bytes, str]) -> str:
    return _write(
        repo, "tree", b"".join(m + b" " + n + b"\0" + bytes.fromhex(i) for m, n, i in entries)
    )


def _commit(repo: Path, tree: str, extra: bytes = b"", message: bytes = b"m\n") -> str:
    who = b"t <t@x> 1700000000 +0000"
    head = b"tree " + tree.encode() + b"\nauthor " + who + b"\ncommitter " + who + b"\n" + extra
    return _write(repo, "commit", head + b"\n" + message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "r"
    path.mkdir()
    git(path, "init", "-q")
    git(path, "commit", "-q", "--allow-empty", "-m", "first")
    return path


def test_a_git_without_batch_command_falls_back_to_pygit2(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.which("git")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    old_git = bin_dir / "git"  # as git 2.34 (Ubuntu 22.04) answers --batch-command
    old_git.write_text(
        '#!/bin/sh\nfor a in "$@"; do [ "$a" = --batch-command ] && '
        '{ echo "error: unknown option \\`batch-command\'" >&2; exit 129; }; done\n'
        f'exec {real} "$@"\n'
    )
    old_git.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    source = open_local(repo)
    assert isinstance(source, GitSource)
    assert source.snapshot("HEAD").message == "first"


def test_a_git_that_dies_is_a_source_error_not_a_wrong_answer(repo: Path) -> None:
    fast, _ = both(repo)
    fast.resolve("HEAD")
    fast._cat._process.kill()  # killed, out of memory, ...
    fast._cat._process.wait()
    for _ in range(2):  # and again, on the closed pipe
        with pytest.raises(SourceError, match="git cat-file stopped"):
            fast.resolve("HEAD")


def test_a_repository_config_makes_git_run_no_program_and_fetch_nothing(
    repo: Path, tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    (repo / "cells").mkdir()
    (repo / "cells" / "a.yaml").write_text("a: 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a cell")
    blob = git(repo, "rev-parse", "HEAD:cells/a.yaml")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # a partial clone's missing blob
    git(repo, "config", "core.fsmonitor", f"touch {ran}/fsmonitor; false")
    git(repo, "config", "core.repositoryformatversion", "1")
    git(repo, "config", "extensions.partialClone", "origin")
    git(repo, "config", "remote.origin.promisor", "true")
    git(repo, "config", "remote.origin.url", str(tmp_path / "elsewhere"))
    git(repo, "config", "remote.origin.uploadpack", f"touch {ran}/uploadpack; false")
    git(repo, "config", "protocol.file.allow", "always")
    ran.mkdir()
    fast = open_local(repo)
    assert isinstance(fast, GitCliSource)
    for rev in (":cells", "HEAD:cells", "0123456789" * 4):  # the index; a missing object
        with pytest.raises(SourceError, match="unknown revision"):
            fast.resolve(rev)
    with pytest.raises(SourceError, match="cannot read blob"):
        fast.snapshot("HEAD")
    assert list(ran.iterdir()) == []


ODD_MODES = [b"100664", b"100000", b"644", b"040000", b"40755", b"120755", b"0", b"20000"]


@pytest.mark.parametrize("mode", ODD_MODES, ids=[m.decode() for m in ODD_MODES])
def test_odd_modes_read_as_pygit2_reads_them(repo: Path, mode: bytes) -> None:
    blob = _write(repo, "blob", b"a: 1\n")
    folder = int(mode, 8) & 0o170000 == 0o040000
    target = _tree(repo, (b"100644", b"f", blob)) if folder else blob
    app = _tree(repo, (mode, b"odd", target), (b"100644", b"ok.yaml", blob))
    service = _tree(repo, (b"40000", b"app", app), (b"100644", b"service.yaml", blob))
    root = _tree(
        repo,
        (b"40000", b"cells", _tree(repo, (mode, b"c.yaml", target))),
        (b"40000", b"services", _tree(repo, (b"40000", b"s", service))),
    )
    commit = _commit(repo, root)
    fast, slow = both(repo)
    assert fast.snapshot(commit) == slow.snapshot(commit)


@pytest.mark.parametrize(
    "raw",
    [
        b"100644 a\0" + b"\1" * 19,
        b"100644 \0" + b"\1" * 20,
        b"100644a\0" + b"\1" * 20,
        b"1009 a\0" + b"\1" * 20,
        b"100644 a",
    ],
    ids=["short id", "no name", "no space", "not octal", "no NUL"],
)
def test_a_malformed_tree_is_unreadable_not_a_crash(repo: Path, raw: bytes) -> None:
    root = _tree(repo, (b"40000", b"cells", _write(repo, "tree", raw)))
    fast, _ = both(repo)
    with pytest.raises(SourceError, match=r"tree \w+ (is malformed|has an entry of mode)"):
        fast.snapshot(_commit(repo, root))


def test_a_folder_entry_naming_a_blob_is_unreadable(repo: Path) -> None:
    blob = _write(repo, "blob", b"a: 1\n")
    root = _tree(repo, (b"40000", b"cells", blob))
    fast, _ = both(repo)
    with pytest.raises(SourceError, match="cannot read tree"):
        fast.snapshot(_commit(repo, root))


def test_a_message_in_its_own_encoding_reads_as_pygit2_reads_it(repo: Path) -> None:
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    for extra, message in (
        (b"encoding ISO-8859-1\n", "caf\xe9 au lait\n".encode("latin-1")),
        (b"", b"bad \xff utf-8\n"),
    ):
        commit = _commit(repo, tree, extra, message)
        fast, slow = both(repo)
        assert fast.snapshot(commit).message == slow.snapshot(commit).message
    unknown = _commit(repo, tree, b"encoding no-such-codec\n", b"plain\n")  # pygit2: LookupError
    assert fast.snapshot(unknown).message == "plain"


def test_a_shallow_clone_and_grafts_cut_the_history_as_for_pygit2(tmp_path: Path) -> None:
    deep = tmp_path / "deep"
    deep.mkdir()
    git(deep, "init", "-q")
    for message in ("one", "two", "three"):
        git(deep, "commit", "-q", "--allow-empty", "-m", message)
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{deep}", str(shallow))
    fast, slow = both(shallow)
    assert fast.parent("HEAD") is None and slow.parent("HEAD") is None
    root = git(deep, "rev-list", "--max-parents=0", "HEAD")
    (deep / ".git" / "info" / "grafts").write_text(f"{git(deep, 'rev-parse', 'HEAD')} {root}\n")
    fast, slow = both(deep)
    assert fast.parent("HEAD") == slow.parent("HEAD") == root


def test_a_missing_parent_is_a_damaged_repository(repo: Path) -> None:
    parent = git(repo, "rev-parse", "HEAD")
    child = _commit(repo, git(repo, "rev-parse", "HEAD^{tree}"), f"parent {'ab' * 20}\n".encode())
    fast, _ = both(repo)
    assert fast.parent(parent) is None
    with pytest.raises(SourceError, match="is missing: the repository is damaged"):
        fast.parent(child)


@pytest.mark.skipif(sys.platform != "linux", reason="a file name of any bytes")
def test_a_repository_in_a_folder_whose_name_is_not_utf8(tmp_path: Path) -> None:
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/fl\xffeet"))
    folder.mkdir()
    git(folder, "init", "-q")
    git(folder, "commit", "-q", "--allow-empty", "-m", "first")
    fast, slow = both(folder)
    assert fast.snapshot("HEAD") == slow.snapshot("HEAD")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_another_users_repository_is_refused_in_one_line(repo: Path) -> None:
    for path in (repo, *repo.rglob("*")):
        os.chown(path, 65534, 65534, follow_symlinks=False)  # nobody's
    with pytest.raises(SourceError, match=r"not owned by current user.*safe\.directory"):
        open_local(repo)
