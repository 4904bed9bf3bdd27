"""Containers in local cells, without running any: which services run as containers, what
a revision needs for them, and the `podman run` a replica gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellops.backends.local.containers import run_arguments
from cellops.backends.local.podman import Podman, missing_tools, podman_check
from cellops.backends.local.users import CellUser
from cellops.model.errors import RevisionRejected
from cellops.model.problems import Problem
from cellops.pipeline import Compiler
from cellops.source.git import GitSource
from tests.fleetrepo import FleetRepo


@pytest.fixture
def fleet(tmp_path: Path) -> FleetRepo:
    """The base fleet (local cells only) with `store` as an image and no app/."""
    repo = FleetRepo(tmp_path / "fleet")
    repo.replace("services/store/service.yaml", "  run:\n    command: [python3, main.py]\n", "")
    repo.remove("services/store/app")
    repo.commit("store as a container")
    return repo


def problems(repo: FleetRepo, path: str | None = None) -> list[Problem]:
    try:
        Compiler(GitSource(repo.path), checks=[podman_check(path)]).revision("HEAD")
    except RevisionRejected as rejected:
        return list(rejected.problems)
    return []


def test_an_image_without_app_runs_as_containers_where_podman_is(fleet: FleetRepo) -> None:
    if missing_tools():
        pytest.skip(f"{missing_tools()} not installed (.ci/run installs them)")
    assert problems(fleet) == []
    desired = Compiler(GitSource(fleet.path)).desired("HEAD")
    store = desired.cells["eu-1"].services["store"]
    assert store.spec.run is None and store.code is None


def test_a_machine_without_podman_refuses_it_naming_each_cell(fleet: FleetRepo) -> None:
    found = problems(fleet, path="")
    assert [(p.file, p.field) for p in found] == [
        (f"cells/{cell}.yaml", "spec.backend") for cell in ("canary", "eu-1", "us-1")
    ]
    message = found[0].message
    assert message.startswith("cell canary runs store as containers, but podman and runc")
    assert "apt-get install podman runc" in message


def test_processes_only_need_no_podman(tmp_path: Path) -> None:
    repo = FleetRepo(tmp_path / "fleet")
    repo.commit()
    assert problems(repo, path="") == []


def test_a_container_image_must_be_pinned_by_digest(fleet: FleetRepo) -> None:
    fleet.replace("cellops.yaml", "requireDigest: true", "requireDigest: false")
    fleet.replace("services/store/service.yaml", "base/store@sha256:" + "1" * 64, "base/store:1.0")
    fleet.commit("a tag")
    found = problems(fleet, path="")
    assert [(p.file, p.field) for p in found] == [("services/store/service.yaml", "spec.image")]
    assert "not pinned by a digest" in found[0].message


def test_podman_runs_each_replica_locked_down_with_the_limits_the_host_has() -> None:
    spec = {"image": "r.example/web@sha256:" + "a" * 64, "limits": {"memory": 2**26, "cpus": 0.5}}
    user = CellUser("cellops-x", 990, 991, "/")
    arguments = run_arguments(
        spec,
        "cellops-f-c-web-1",
        {"cell": "c"},
        {"PORT": "20001"},
        user=user,
        controllers=frozenset({"memory", "cpu", "pids"}),
    )
    text = " ".join(arguments)
    for flag in (
        "--read-only",
        "--cap-drop ALL",
        "--security-opt no-new-privileges",
        "--network host",
        "--pull never",
        "--user 990:991",
        "--memory 67108864",
        "--cpus 0.5",
        "--pids-limit 1024",
        "--label dev.cellops.cell=c",
        "--env PORT=20001",
    ):
        assert flag in text
    assert arguments[-1] == spec["image"]
    bare = run_arguments(spec, "n", {}, {}, user=None, controllers=frozenset())
    assert not {"--memory", "--cpus", "--pids-limit", "--user"} & set(bare)


def test_each_state_folder_has_its_own_storage_and_names(tmp_path: Path) -> None:
    one, two = Podman(tmp_path / "one"), Podman(tmp_path / "two")
    one.configure()
    text = (one.root / "storage.conf").read_text()
    assert str(tmp_path / "one" / "podman" / "storage") in text and 'driver = "vfs"' in text
    assert "default_ulimits = []" in (one.root / "containers.conf").read_text()
    assert one.name("eu-1", "web-1") != two.name("eu-1", "web-1")
