"""The `cellops` command as users run it: a real process on real Git repos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.fleetrepo import FleetRepo

CELLOPS = shutil.which("cellops", path=str(Path(sys.executable).parent)) or "cellops"


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [CELLOPS, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_validate_a_valid_fleet(fleet: FleetRepo) -> None:
    result = run("validate", fleet.path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid: 3 cells, 2 services" in result.stdout


def test_validate_reports_file_line_field_and_exits_1(fleet: FleetRepo) -> None:
    fleet.replace("cells/eu-1.yaml", "maxTenants: 10", "maxTenant: 10")
    fleet.replace("services/api/service.yaml", "replicas: 2", "replicas: two")
    fleet.commit("two mistakes")
    result = run("validate", fleet.path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("cells/eu-1.yaml:11: spec.capacity.maxTenant: unknown field")
        for line in lines
    ), result.stdout
    assert any(
        line.startswith("services/api/service.yaml:9: spec.replicas: expected an integer")
        for line in lines
    ), result.stdout
    assert "rejected: 2 error(s)" in result.stdout


def test_validate_json_for_scripts(fleet: FleetRepo) -> None:
    fleet.replace("cells/eu-1.yaml", "maxTenants: 10", "maxTenants: -1")
    fleet.commit("negative")
    result = run("validate", fleet.path, "-o", "json")
    document = json.loads(result.stdout)
    assert result.returncode == 1 and document["valid"] is False
    assert document["problems"] == [
        {
            "file": "cells/eu-1.yaml",
            "line": 11,
            "field": "spec.capacity.maxTenants",
            "message": "expected a number >= 0, got -1",
            "severity": "error",
        }
    ]


def test_validate_an_older_revision_and_the_working_tree(fleet: FleetRepo) -> None:
    good = fleet.repo.head.target
    fleet.replace("cells/eu-1.yaml", "kind: Cell", "kind: Cel")
    fleet.commit("typo")
    assert run("validate", fleet.path).returncode == 1
    assert run("validate", fleet.path, "--rev", str(good)).returncode == 0
    assert run("validate", fleet.path, "--rev", "HEAD~1").returncode == 0
    fleet.replace("cells/eu-1.yaml", "kind: Cel", "kind: Cell")  # fixed, not committed
    assert run("validate", "--path", fleet.path).returncode == 0


def test_unreadable_sources_exit_3(fleet: FleetRepo, tmp_path: Path) -> None:
    unknown = run("validate", fleet.path, "--rev", "no-such-branch")
    assert unknown.returncode == 3
    assert "unknown revision 'no-such-branch'" in unknown.stderr
    assert run("plan", tmp_path / "nowhere").returncode == 3


def test_plan_defaults_to_the_parent_commit(fleet: FleetRepo) -> None:
    fleet.write("services/store/app/main.py", "print('store v2')\n")
    fleet.commit("store v2")
    result = run("plan", fleet.path, "-o", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    waves = [(w["name"], w["canary"], [c["cell"] for c in w["cells"]]) for w in plan["waves"]]
    assert waves == [("canary", True, ["canary"]), ("rest", False, ["eu-1", "us-1"])]
    assert plan["summary"]["configured"] == 3
    assert plan["summary"]["unchanged"] == 3
    changes = plan["waves"][0]["cells"][0]["changes"]
    assert [(c["service"], c["action"]) for c in changes] == [("store", "configured")]


def test_plan_of_the_first_commit_creates_everything(fleet: FleetRepo) -> None:
    result = run("plan", fleet.path)
    assert result.returncode == 0, result.stderr
    assert "6 created, 0 configured, 0 deleted, 0 unchanged" in result.stdout
    # dependencies first: store before api in every cell
    document = yaml.safe_load(run("plan", fleet.path, "-o", "yaml").stdout)
    for wave in document["waves"]:
        for cell in wave["cells"]:
            assert [c["service"] for c in cell["changes"]] == ["store", "api"]


def test_plan_refuses_a_rejected_target(fleet: FleetRepo) -> None:
    fleet.replace("services/api/service.yaml", "consumes: [store/v1]", "consumes: [store/v9]")
    fleet.commit("nobody provides store/v9")
    result = run("plan", fleet.path)
    assert result.returncode == 1
    assert (
        "services/api/service.yaml:18: spec.contracts.consumes[0]: store/v9 has no provider"
        in result.stdout
    )


def test_render_one_cell(fleet: FleetRepo) -> None:
    document = yaml.safe_load(run("render", fleet.path, "--cell", "us-1", "-o", "yaml").stdout)
    assert document["cell"] == "us-1"
    assert document["services"]["api"]["spec"]["replicas"] == 3
    assert document["services"]["api"]["dependsOn"] == ["store"]
    assert len(document["services"]["store"]["hash"]) == 64
    text = run("render", fleet.path, "-c", "us-1")
    assert text.returncode == 0 and "api" in text.stdout
    missing = run("render", fleet.path, "-c", "mars")
    assert missing.returncode == 2 and "no cell 'mars'" in missing.stdout


def test_init_creates_a_valid_committed_fleet(tmp_path: Path) -> None:
    target = tmp_path / "new-fleet"
    result = run("init", target)
    assert result.returncode == 0, result.stderr
    assert (target / ".git").is_dir()
    assert run("validate", target).returncode == 0
    assert "6 wave" not in run("plan", target).stdout  # sanity: the plan printed
    again = run("init", target)
    assert again.returncode == 2 and "not empty" in again.stderr


def test_schema_validates_real_documents(tmp_path: Path, fleet: FleetRepo) -> None:
    assert run("schema", "--out", tmp_path / "schemas").returncode == 0
    schemas = {
        kind: json.loads((tmp_path / "schemas" / f"{kind}.schema.json").read_text())
        for kind in ("fleet", "cell", "service")
    }
    jsonschema.validate(yaml.safe_load(fleet.read("cellops.yaml")), schemas["fleet"])
    jsonschema.validate(yaml.safe_load(fleet.read("cells/eu-1.yaml")), schemas["cell"])
    jsonschema.validate(yaml.safe_load(fleet.read("services/api/service.yaml")), schemas["service"])
    bad = yaml.safe_load(fleet.read("services/api/service.yaml"))
    bad["spec"]["replica"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schemas["service"])
    one = json.loads(run("schema", "--kind", "cell").stdout)
    assert one["$id"].endswith("cell.schema.json")


@pytest.mark.parametrize("command", ["init", "validate", "plan", "render", "schema", "demo"])
def test_every_command_explains_itself(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    assert "Usage" in result.stdout


def test_demo_runs_to_a_successful_end() -> None:
    """The README's main command: a good release everywhere, a bad one contained."""
    result = subprocess.run(
        [CELLOPS, "demo"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo complete: the bad release never left its canary cell" in result.stdout
    assert "LEAKED" not in result.stdout
    assert result.stdout.count(" held ") == 6


def test_render_a_kubernetes_cell_as_what_would_be_applied(tmp_path: Path) -> None:
    k8s = Path(__file__).parents[2] / "examples" / "k8s-fleet"
    result = run("render", "--path", k8s, "--cell", "eu-canary", "-o", "yaml")
    assert result.returncode == 0, result.stderr
    objects = list(yaml.safe_load_all(result.stdout))
    kinds = [o["kind"] for o in objects]
    assert kinds[:3] == ["Namespace", "NetworkPolicy", "NetworkPolicy"]
    assert kinds.count("Deployment") == 2
    assert {o["metadata"].get("namespace", "cell-eu-canary") for o in objects} == {"cell-eu-canary"}
