"""The `cellops` command as users run it: a real process on real Git repos."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.clirun import cellops
from tests.fleetrepo import FleetRepo

CELLOPS = shutil.which("cellops", path=str(Path(sys.executable).parent)) or "cellops"


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return cellops(*args, cwd=cwd)


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
        line.startswith(
            "services/api/service.yaml:9: spec.replicas:"
            " expected a whole number, got the text 'two'"
        )
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


@pytest.mark.slow
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
    assert "tenant traffic through the router" in result.stdout  # and per cell, per phase
    assert "the bad release cost no request to any tenant outside eu-canary" in result.stdout


def test_render_a_kubernetes_cell_as_what_would_be_applied(tmp_path: Path) -> None:
    k8s = Path(__file__).parents[2] / "examples" / "k8s-fleet"
    result = run("render", "--path", k8s, "--cell", "eu-canary", "-o", "yaml")
    assert result.returncode == 0, result.stderr
    objects = list(yaml.safe_load_all(result.stdout))
    kinds = [o["kind"] for o in objects]
    assert kinds[:3] == ["Namespace", "NetworkPolicy", "NetworkPolicy"]
    assert kinds.count("Deployment") == 2
    assert {o["metadata"].get("namespace", "cell-eu-canary") for o in objects} == {"cell-eu-canary"}


# -- the controller's state: faults give one line and exit 3 ------------------------------------
def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exit 3 and said why in one line, without a traceback."""
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("✗ "), result.stderr
    return lines[0]


def damage(db: Path, how: str) -> None:
    from cellops.store.sqlite import SqliteStore

    store = SqliteStore(db)
    for index in range(300):
        store.add_event(float(index), "note", "x" * 200)
    store.close()
    if how == "header":
        with open(db, "r+b") as handle:
            handle.write(b"\xde\xad" * 50)
    elif how == "truncated":
        with open(db, "r+b") as handle:
            handle.truncate(db.stat().st_size // 2)
    else:  # written by a newer cellops
        import sqlite3

        raw = sqlite3.connect(db)
        raw.execute("PRAGMA user_version = 999")
        raw.close()


@pytest.mark.parametrize("how", ["header", "truncated", "newer"])
def test_a_store_that_cannot_be_used_exits_3_with_one_line(
    fleet: FleetRepo, tmp_path: Path, how: str
) -> None:
    state = tmp_path / "state"
    damage(state / "cellops.db", how)
    said = "newer cellops" if how == "newer" else "is damaged"
    for command in (["status"], ["history"], ["rollout", "status"], ["up", "--no-view"]):
        line = one_error_line(run(*command, fleet.path, "--state-dir", state))
        assert str(state / "cellops.db") in line and said in line, line
    detached = one_error_line(run("up", "--detach", fleet.path, "--state-dir", state))
    assert "the controller exited at start" in detached and str(state / "cellops.db") in detached


def test_a_state_folder_that_cannot_be_made_exits_3(fleet: FleetRepo, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("a file where the folder should be")
    line = one_error_line(run("up", "--no-view", fleet.path, "--state-dir", state))
    assert f"cannot use the state folder {state}" in line


# root writes into read-only folders, unless it gives up overriding file modes
SETPRIV = shutil.which("setpriv")
AS_OWNER = [SETPRIV, "--bounding-set", "-dac_override,-dac_read_search"] if SETPRIV else []


@pytest.mark.skipif(os.geteuid() == 0 and not SETPRIV, reason="root without setpriv")
def test_a_read_only_state_folder_exits_3(fleet: FleetRepo, tmp_path: Path) -> None:
    from cellops.store.sqlite import SqliteStore

    state = tmp_path / "state"
    SqliteStore(state / "cellops.db").close()
    state.chmod(0o500)
    as_owner = AS_OWNER if os.geteuid() == 0 else []
    try:
        for command in (["status"], ["up", "--no-view"], ["up", "--detach"]):
            args = [*as_owner, CELLOPS, *command, str(fleet.path), "--state-dir", str(state)]
            done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
            line = one_error_line(done)
            assert f"the state folder {state} (" in line and "writable" in line, line
    finally:
        state.chmod(0o700)


@pytest.mark.parametrize("detach", [False, True])
def test_up_refuses_a_lost_store_beside_running_cells(
    fleet: FleetRepo, tmp_path: Path, detach: bool
) -> None:
    from cellops.backends.local.layout import cell_paths, write_json

    state = tmp_path / "state"
    write_json(cell_paths(state, "canary").desired, {"services": {}})
    (state / "cellops.db").write_bytes(b"")  # truncated to nothing
    line = one_error_line(
        run("up", *(["--detach"] if detach else ["--no-view"]), fleet.path, "--state-dir", state)
    )
    assert f"{state / 'cellops.db'} is empty" in line and "local cell(s) canary" in line
    assert "Restore cellops.db from a backup" in line
    assert (state / "cellops.db").stat().st_size == 0  # nothing was made in its place


@pytest.mark.slow
def test_a_store_lost_after_a_halted_release_leaves_the_canary_serving(tmp_path: Path) -> None:
    """kill -9 after a bad release halted on the canary, delete the store, `up`: refused,
    and the canary keeps serving its good version (a fresh store would have emptied it)."""
    from cellops.store.records import RolloutState
    from tests.integration.controller_harness import Fleet, ServiceDef

    tag = hashlib.sha256(str(tmp_path).encode()).hexdigest()[:5]
    fleet = Fleet(tmp_path, f"l{tag}", [ServiceDef("web", 18097)], regions=("a",))
    try:
        fleet.start()
        fleet.wait_rollout(fleet.head, RolloutState.COMPLETED)
        bad = fleet.release("web", "v2", crash=True)
        fleet.wait_rollout(bad, RolloutState.HALTED)
        fleet.kill()
        fleet.store.close()
        fleet._store = None
        for name in ("cellops.db", "cellops.db-wal", "cellops.db-shm"):
            (fleet.state / name).unlink(missing_ok=True)
        line = one_error_line(
            fleet.cli("up", fleet.repo.path, "--state-dir", fleet.state, "--no-view")
        )
        assert "cellops.db is missing" in line and f"local cell(s) l{tag}-a1, l{tag}-canary" in line
        fleet.wait_serving("web", "v1")
    finally:
        leftovers = fleet.down()
    assert not leftovers, f"processes outlived `cellops down`: {leftovers}"


def test_a_second_controller_is_refused_with_one_line(fleet: FleetRepo, tmp_path: Path) -> None:
    from cellops.controller import process

    state = tmp_path / "state"
    held = process.lock(state)  # this test process is the running controller
    process.write_record(state, ready=True)
    try:
        for how in ("--detach", "--no-view"):
            line = one_error_line(run("up", how, fleet.path, "--state-dir", state))
            assert f"a controller already runs for {state} (pid {os.getpid()})" in line, line
    finally:
        held.close()


def test_a_webhook_port_in_use_exits_3_with_one_line(fleet: FleetRepo, tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        for how in ("--no-view", "--detach"):
            args = ["up", how, fleet.path, "--state-dir", tmp_path / "state"]
            line = one_error_line(run(*args, "--webhook", str(port), "--webhook-secret", "s"))
            assert f"the webhook cannot listen on 127.0.0.1:{port} (Address already in use)" in line
    assert run("down", fleet.path, "--state-dir", tmp_path / "state").returncode == 0


def test_a_bad_duration_is_bad_usage_before_anything_starts(
    fleet: FleetRepo, tmp_path: Path
) -> None:
    for how in ("--no-view", "--detach"):
        result = run("up", how, fleet.path, "--state-dir", tmp_path / "state", "--poll", "soon")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "Invalid value for --poll: 'soon' is not a duration" in result.stderr
    assert not (tmp_path / "state").exists()
