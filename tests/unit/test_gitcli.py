"""The `git`-program reader (cellops.source.gitcli) reads every commit as pygit2 does:
the same snapshot, the same refusals, the same errors; and nothing in a revision name or
the environment makes it read another object or repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cellops.model.errors import SourceError
from cellops.source.git import GitSource
from cellops.source.gitcli import GitCliSource, open_local
from tests.fleetrepo import FleetRepo

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git program")


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@x"}
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, check=True)
    return done.stdout.decode().strip()


def both(path: Path) -> tuple[GitCliSource, GitSource]:
    fast = open_local(path)
    assert isinstance(fast, GitCliSource)
    return fast, GitSource(path)


def test_the_example_fleet_reads_the_same(example_fleet: FleetRepo) -> None:
    fast, slow = both(example_fleet.path)
    assert fast.snapshot("HEAD") == slow.snapshot("HEAD")
    assert fast.resolve("HEAD") == slow.resolve("HEAD")
    assert fast.root.resolve() == slow.root.resolve()


def test_links_modes_submodules_big_and_odd_files_read_the_same(tmp_path: Path) -> None:
    repo = tmp_path / "fleet"
    shutil.copytree(Path(__file__).parents[2] / "examples" / "fleet", repo)
    app = repo / "services" / "ledger" / "app"
    app.mkdir(exist_ok=True)
    (app / "run.sh").write_text("#!/bin/sh\n")
    (app / "run.sh").chmod(0o755)
    (app / "deep" / "er").mkdir(parents=True)
    (app / "deep" / "er" / "x.txt").write_text("x")
    os.symlink("run.sh", app / "inside")
    os.symlink("../../../../etc/passwd", app / "outside")
    os.symlink("ledger.yaml", repo / "cells" / "linked.yaml")
    (repo / "cells" / "huge.yaml").write_bytes(b"#" * ((1 << 20) + 1))
    (app / "caf\xe9.txt".encode("latin-1").decode("utf-8", "surrogateescape")).write_text("é")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'ab' * 20},services/ledger/app/sub")
    git(repo, "commit", "-q", "-m", "odd things\n\nwith a body")
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    fast, slow = both(repo)
    for rev in ("HEAD", "HEAD~1", "main"):
        assert fast.snapshot(rev) == slow.snapshot(rev)
    assert fast.snapshot("HEAD~1").problems  # the link and the big file were refused
    assert fast.parent("HEAD") == slow.parent("HEAD") == fast.resolve("HEAD~1")
    assert fast.parent("HEAD~1") is None and slow.parent("HEAD~1") is None


def test_errors_read_the_same(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    fast, slow = both(empty)
    for source in (fast, slow):
        with pytest.raises(SourceError, match="has no commits yet"):
            source.snapshot("HEAD")
    git(empty, "commit", "-q", "--allow-empty", "-m", "first")
    for source in both(empty):
        with pytest.raises(SourceError, match="unknown revision 'nope'"):
            source.resolve("nope")
    with pytest.raises(SourceError, match="not a Git repository"):
        open_local(tmp_path / "nowhere")


def test_a_revision_name_cannot_carry_a_second_command(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    fast, _ = both(repo)
    head = fast.resolve("HEAD")
    for rev in ("HEAD\ninfo HEAD", "HEAD info", "HEAD\x00", ""):
        with pytest.raises(SourceError, match="unknown revision"):
            fast.resolve(rev)
    assert fast.resolve("HEAD") == head  # the process is still in step


def test_gits_environment_does_not_redirect_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, other = tmp_path / "mine", tmp_path / "other"
    for repo, message in ((mine, "mine"), (other, "other")):
        repo.mkdir()
        git(repo, "init", "-q")
        git(repo, "commit", "-q", "--allow-empty", "-m", message)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    fast = open_local(mine)
    assert fast.snapshot("HEAD").message == "mine"
