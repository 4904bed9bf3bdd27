"""Every misuse of the command line is a message that says what to do, and an exit
status, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pygit2
import pytest

from tests.clirun import cellops
from tests.fleetrepo import FleetRepo


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = cellops(*args)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def test_a_poll_interval_that_is_no_duration(fleet: FleetRepo, tmp_path: Path) -> None:
    result = run("up", fleet.path, "--poll", "abc", "--state-dir", tmp_path / "state")
    assert result.returncode == 2
    assert "--poll" in result.stderr and "'abc' is not a duration" in result.stderr
    assert not (tmp_path / "state").exists()  # refused before anything started


def test_init_onto_a_file_or_under_one(tmp_path: Path) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("mine\n")
    onto = run("init", afile)
    assert onto.returncode == 2 and f"{afile} is a file; choose a new folder" in onto.stderr
    under = run("init", afile / "fleet")
    assert under.returncode == 2 and "cannot create the fleet repo in" in under.stderr
    assert afile.read_text() == "mine\n"


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_webhook_port_out_of_range(fleet: FleetRepo, tmp_path: Path, port: str) -> None:
    result = run("up", fleet.path, "--webhook", port, "--state-dir", tmp_path / "state")
    assert result.returncode == 2 and "--webhook" in result.stderr
    assert not (tmp_path / "state").exists()


def test_a_webhook_without_a_secret_is_warned_about(fleet: FleetRepo, tmp_path: Path) -> None:
    """The warning comes first: here the state folder (a file) then stops the start."""
    blocker = tmp_path / "state"
    blocker.write_text("")
    result = run("up", fleet.path, "--webhook", "0", "--no-view", "--state-dir", blocker)
    assert "--webhook without a secret: every push is refused (403)" in result.stderr
    assert result.returncode == 3


def test_a_repo_with_no_commits(tmp_path: Path) -> None:
    pygit2.init_repository(str(tmp_path / "empty"))
    for command in (["validate"], ["plan"], ["render", "--cell", "eu-1"]):
        result = run(*command, tmp_path / "empty")
        assert result.returncode == 3, command
        assert "the repository has no commits yet: commit the fleet files" in result.stderr
    assert "cellops validate --path" in result.stderr


def test_plan_from_a_rejected_revision_names_a_valid_one(fleet: FleetRepo) -> None:
    good = fleet.commit("still good")
    fleet.replace("cellops.yaml", "kind: Fleet", "kind: Flet")
    bad = fleet.commit("typo")
    fleet.replace("cellops.yaml", "kind: Flet", "kind: Fleet")
    fleet.commit("typo fixed")
    result = run("plan", fleet.path, "--from", bad)
    assert result.returncode == 2
    assert f"revision {bad[:12]} is rejected" in result.stderr
    assert f"plan with --from {good[:12]}, its last valid ancestor" in result.stderr
