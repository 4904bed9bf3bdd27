"""A fleet repo at a URL: mirrored into the state folder, fetched on each poll."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellops.backends.fake import FakeBackend
from cellops.controller.reconcile import Reconciler, Settings
from cellops.model.errors import SourceError
from cellops.pipeline import Compiler
from cellops.source.git import export_tree
from cellops.source.remote import MirroredSource, is_url
from cellops.statedir import default_state_dir
from cellops.store.sqlite import SqliteStore
from tests.fleetrepo import FleetRepo


def test_urls_are_told_from_paths() -> None:
    assert is_url("https://git.example/fleet.git")
    assert is_url("file:///srv/fleet")
    assert is_url("git@git.example:team/fleet.git")
    assert not is_url("/srv/fleet") and not is_url("fleet") and not is_url("./a:b")


def test_a_mirror_follows_its_origin(fleet: FleetRepo, tmp_path: Path) -> None:
    mirror = MirroredSource(f"file://{fleet.path}", tmp_path / "mirror.git")
    first = str(fleet.repo.head.target)
    assert mirror.resolve("HEAD") == first
    fleet.write("services/api/app/main.py", "print('api v2')\n")
    second = fleet.commit("api v2")
    assert mirror.resolve("HEAD") == first  # not fetched yet
    mirror.refresh()
    assert mirror.resolve("HEAD") == second
    assert mirror.parent(second) == first
    snapshot = mirror.snapshot(second)
    target = tmp_path / "app"
    export_tree(mirror.root, snapshot.trees["services/api/app"], target)
    assert (target / "main.py").read_text() == "print('api v2')\n"
    # a second controller on the same state folder reuses the mirror
    again = MirroredSource(f"file://{fleet.path}", tmp_path / "mirror.git")
    assert again.resolve("HEAD") == second


def test_an_unreachable_url_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot clone"):
        MirroredSource(f"file://{tmp_path}/nowhere", tmp_path / "mirror.git")


def test_the_controller_rolls_out_what_it_fetches(fleet: FleetRepo, tmp_path: Path) -> None:
    url = f"file://{fleet.path}"
    source = MirroredSource(url, tmp_path / "state" / "mirror.git")
    store = SqliteStore(tmp_path / "state" / "cellops.db")
    backend = FakeBackend()
    reconciler = Reconciler(Compiler(source), store, lambda cell: backend, Settings())
    reconciler.reconcile(check_source=True)
    assert store.rollouts(1)[0].revision == str(fleet.repo.head.target)
    fleet.replace("services/api/service.yaml", "MODE: normal", "MODE: fetched")
    head = fleet.commit("pushed to the origin")
    reconciler.reconcile(check_source=True)
    assert store.rollouts(1)[0].revision == head
    assert default_state_dir(url) != default_state_dir(fleet.path)
    assert default_state_dir(url).name.startswith("fleet-")
