"""Finding a fleet's controller state from anywhere in a clone of the fleet repo."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellops.statedir import DB, default_state_dir, find_state_dir, remember


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CELLOPS_STATE_DIR", raising=False)


def _repo(path: Path, url: str | None = None) -> Path:
    (path / ".git").mkdir(parents=True)
    remote = f'[remote "origin"]\n\turl = {url}\n' if url else ""
    (path / ".git" / "config").write_text("[core]\n\tbare = false\n" + remote)
    (path / "services" / "api").mkdir(parents=True)
    return path


def _state(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / DB).write_bytes(b"")
    return path


def test_a_subfolder_of_the_repo_finds_the_repos_state(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "fleet")
    state = _state(default_state_dir(repo))
    assert find_state_dir(repo / "services" / "api") == state


def test_a_state_dir_given_to_up_is_found_from_the_repo(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "fleet")
    elsewhere = _state(tmp_path / "custom-state")
    assert find_state_dir(repo) == default_state_dir(repo)  # not noted yet
    remember(repo, elsewhere)
    assert find_state_dir(repo / "services") == elsewhere


def test_a_clone_finds_the_controller_started_on_its_url(tmp_path: Path) -> None:
    url = "https://git.example.com/team/fleet.git"
    mirror = _state(default_state_dir(url))
    remember(url, mirror)
    clone = _repo(tmp_path / "clone", url=url)
    assert find_state_dir(clone) == mirror
    assert find_state_dir(_repo(tmp_path / "other")) != mirror


def test_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLOPS_STATE_DIR", str(tmp_path / "env"))
    assert find_state_dir(_repo(tmp_path / "fleet")) == tmp_path / "env"
