"""The CLI's config file holds tokens: it is written through a file this process made
itself (O_EXCL, mode 0600), never through a file or link someone put there first."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from cellops.cli.contexts import _save


@pytest.fixture
def path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "cellops" / "config.yaml"
    monkeypatch.setenv("CELLOPS_CONFIG", str(target))
    return target


CONFIG = {
    "current-context": "prod",
    "contexts": [{"name": "prod", "server": "https://p:8470", "token": "cellops_secret"}],
}


def test_the_file_is_private_and_whole(path: Path) -> None:
    _save(CONFIG)
    assert yaml.safe_load(path.read_text()) == CONFIG
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no staging left


def test_a_planted_staging_file_or_link_is_not_written_through(path: Path, tmp_path: Path) -> None:
    path.parent.mkdir()
    elsewhere = tmp_path / "attacker-reads-this"
    elsewhere.write_text("")
    os.symlink(elsewhere, path.with_name(f".{path.name}.{os.getpid()}"))  # the old name
    readable = path.with_name(f".{path.name}.tmp")
    readable.write_text("")
    readable.chmod(0o644)
    _save(CONFIG)
    assert elsewhere.read_text() == ""  # no token went through the link
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "cellops_secret" in path.read_text()
