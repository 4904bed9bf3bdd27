"""A command loads what it uses: `validate`, `plan`, `render`, `status` and `get` never
import the controller, the API server, the Kubernetes client or Helm (they made
`cellops validate` take 1.7 s, 1.4 s of it importing). What a command imported is read
from the process itself, not timed: speed is measured in bench/cli.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fleetrepo import FleetRepo

# Modules no read-only command of a fleet of local cells may load.
HEAVY = (
    "kubernetes",
    "kubernetes_validate",
    "jsonschema",
    "cellops.controller.loop",
    "cellops.controller.reconcile",
    "cellops.wiring",
    "cellops.api",
    "cellops.source.webhook",
    "cellops.backends.kubernetes.backend",
    "cellops.backends.kubernetes.helm",
    "uvicorn",
    "starlette",
    "fastapi",
    "aiohttp",
    "requests",
    "cryptography",
    "structlog",
    "sigstore",
    "prometheus_client",
    "asyncio",
    "rich",  # a tenth of a start: plain lines and tables are written without it
)
# What the everyday commands also do without (cellops.cli.fast, cellops.source.gitcli):
# typer and click cost ~60 ms of a start, pygit2 ~100 ms.
FAST_HEAVY = ("typer", "click", "pygit2")

PROBE = """
import json, sys
sys.argv = ["cellops", *json.loads(sys.argv[1])]
from cellops.cli.main import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
finally:
    sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
sys.exit(code)
"""


def loaded(*args: str | Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([str(a) for a in args])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = result.stderr.rsplit("MODULES ", 1)[-1]
    return result, set(json.loads(line))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize(
    "command",
    [["validate"], ["plan"], ["render", "--cell", "eu-1", "-o", "json"], ["--help"]],
    ids=["validate", "plan", "render", "help-of-root"],
)
def test_reading_the_fleet_loads_no_controller_server_or_cluster_client(
    example_fleet: FleetRepo, command: list[str]
) -> None:
    args = [*command, example_fleet.path] if command != ["--help"] else command
    result, modules = loaded(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    help_panels = {m for m in modules if m.split(".")[0] == "rich"} if "--help" in args else set()
    assert heavy(modules - help_panels) == []  # --help draws its panels with rich
    if command != ["--help"]:  # only the command run is loaded, not its neighbours
        assert "cellops.cli.demo" not in modules and "cellops.cli.router" not in modules
        assert sorted(m for m in modules if m.split(".")[0] in FAST_HEAVY) == []


@pytest.mark.parametrize(
    "command", ["status", "get cells", "get rollouts", "events", "history", "describe rollout"]
)
def test_reading_the_controllers_records_loads_no_controller(
    example_fleet: FleetRepo, tmp_path: Path, command: str
) -> None:
    from cellops.store.sqlite import SqliteStore

    SqliteStore(tmp_path / "state" / "cellops.db").close()
    positional = command in ("status", "history")  # the others take --repo
    repo = [example_fleet.path] if positional else ["--repo", example_fleet.path]
    result, modules = loaded(*command.split(), *repo, "--state-dir", tmp_path / "state")
    assert result.returncode in (0, 2), result.stdout + result.stderr  # 2: no rollout yet
    assert heavy(modules) == []
    if command in ("status", "get cells", "get rollouts"):
        assert sorted(m for m in modules if m.split(".")[0] in FAST_HEAVY) == []
    if command not in ("status", "get cells"):  # cells need the fleet's revision; these not
        assert "cellops.spec.cell" not in modules and "cellops.render" not in modules
