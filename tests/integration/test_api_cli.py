"""The CLI's side of the API: tokens made, listed and revoked on this host; steering
commands here and through `--server` (a real uvicorn); contexts in a config file. Every
failure one line and an exit status."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cellops.store.sqlite import SqliteStore
from tests.apikit import NEW, populate, serve
from tests.clirun import cellops

pytestmark = pytest.mark.slow


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cellops(*args, env=env)


def one_line(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("✗ "), result.stderr
    return lines[0]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    store = SqliteStore(folder / "cellops.db")
    populate(store)
    store.close()
    return folder


def test_tokens_are_made_listed_and_revoked_here(state: Path) -> None:
    made = run("token", "create", "--role", "viewer", "--name", "grafana", "--state-dir", state)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("cellops_") and len(token) > 40 and "\n" not in token
    assert "grafana" in made.stderr and token not in made.stderr
    store = SqliteStore(state / "cellops.db")
    try:
        assert store.authenticate(token, 0.0) is not None
        assert token not in (state / "cellops.db").read_bytes().decode(errors="replace")
    finally:
        store.close()
    listed = run("token", "list", "--state-dir", state, "-o", "json")
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["role"], r["revoked"]) for r in rows] == [("grafana", "viewer", None)]
    assert token not in listed.stdout
    assert run("token", "revoke", "grafana", "--state-dir", state).returncode == 0
    assert json.loads(run("token", "list", "--state-dir", state, "-o", "json").stdout)[0]["revoked"]
    one_line(run("token", "revoke", "grafana", "--state-dir", state), 2)
    bad = run("token", "create", "--role", "admin", "--state-dir", state)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_steering_here_goes_through_the_store(state: Path) -> None:
    approved = run("rollout", "approve", "--state-dir", state)
    assert approved.returncode == 0 and "wave rest of rollout #1 approved" in approved.stdout
    assert "needs no approval" in one_line(
        run("rollout", "approve", "rest", "--state-dir", state), 1
    )
    assert "has no wave 'x'" in one_line(run("rollout", "approve", "x", "--state-dir", state), 2)
    assert run("promote", "--state-dir", state).returncode == 0
    assert "already runs its last good revision" in one_line(
        run("rollback", "cell-0001", "--state-dir", state), 2
    )
    assert "name a cell" in one_line(run("rollback", "--state-dir", state), 2)
    assert run("rollout", "pause", "--state-dir", state).returncode == 0
    assert run("rollout", "abort", "--state-dir", state).returncode == 0
    assert "no rollout is running" in one_line(run("promote", "--state-dir", state), 2)


def test_the_cli_asks_a_remote_controller(tmp_path: Path) -> None:
    with serve(tmp_path) as api:
        viewer = {"CELLOPS_SERVER": api.url, "CELLOPS_TOKEN": api.viewer}
        operator = {"CELLOPS_SERVER": api.url, "CELLOPS_TOKEN": api.operator}
        status = run("status", "-o", "json", env=viewer)
        assert status.returncode == 0, status.stderr
        assert len(json.loads(status.stdout)["cells"]) == 6
        rollout = run("rollout", "status", env=viewer)
        assert rollout.returncode == 0 and "waiting for approval" in rollout.stdout
        history = run("history", "-o", "json", env=viewer)
        assert NEW in [r["revision"] for r in json.loads(history.stdout)]
        denied = one_line(run("rollout", "pause", env=viewer), 2)
        assert "needs the operator role" in denied
        assert run("rollout", "pause", "--server", api.url, env=operator).returncode == 0
        assert api.store.active_rollout().paused  # type: ignore[union-attr]
        assert "paused: resume it first" in one_line(run("promote", env=operator), 1)
        wrong = one_line(run("status", env={**viewer, "CELLOPS_TOKEN": "cellops_nope"}), 3)
        assert "refused the token" in wrong
        url = api.url
    gone = one_line(run("status", env={"CELLOPS_SERVER": url, "CELLOPS_TOKEN": "t"}), 3)
    assert f"cannot reach the controller at {url}" in gone


def test_contexts_name_the_controller_and_its_token(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    env = {"CELLOPS_CONFIG": str(config)}
    with serve(tmp_path) as api:
        token_file = tmp_path / "token"
        token_file.write_text(api.viewer + "\n")
        made = run(
            "config", "set-context", "lab", "--server", api.url, "--token-file", token_file, env=env
        )
        assert made.returncode == 0, made.stderr
        assert config.stat().st_mode & 0o777 == 0o600
        assert api.viewer not in run("config", "get-contexts", env=env).stdout
        status = run("status", "-o", "json", env=env)
        assert status.returncode == 0 and len(json.loads(status.stdout)["cells"]) == 6
        assert "no context 'x'" in one_line(run("config", "use-context", "x", env=env), 2)
        assert run("config", "use-context", "-", env=env).returncode == 0
        here = run("status", "--state-dir", tmp_path / "none", env=env)
        assert here.returncode == 3 and "no controller state" in here.stderr
