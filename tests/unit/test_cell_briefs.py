"""The cells the controller keeps in brief read exactly as the rendered revision does:
`status` and `get` list the same cells, addresses, namespaces and never-applied services
from the briefs, without reading Git or loading the spec."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cellops.pipeline import Compiler
from cellops.query.cells import cell, cells
from cellops.render import DesiredFleet
from cellops.render.brief import fleet_brief
from cellops.source.git import GitSource, create_repository
from cellops.store.sqlite import SqliteStore
from tests.ledgerkit import record_applied

EXAMPLES = Path(__file__).parents[2] / "examples"


def _state(tmp_path: Path, example: str, applied: int) -> tuple[SqliteStore, DesiredFleet]:
    repo = tmp_path / example
    shutil.copytree(EXAMPLES / example, repo)
    create_repository(repo, example)
    desired = Compiler(GitSource(repo)).desired("HEAD")
    store = SqliteStore(tmp_path / f"{example}.db")
    store.set_setting("fleet.current", desired.revision)
    with store.transaction():  # some cells applied, one service of them left out
        for desired_cell in list(desired.cells.values())[:applied]:
            for name, service in list(desired_cell.services.items())[1:]:
                record_applied(store, desired_cell.name, name, service)
    return store, desired


@pytest.mark.parametrize("example", ["fleet", "k8s-fleet"])
def test_briefs_read_as_the_rendered_revision(tmp_path: Path, example: str) -> None:
    store, desired = _state(tmp_path, example, applied=2)
    briefs = fleet_brief(desired)["cells"]
    assert cells(store, None, briefs) == cells(store, None, desired)
    for name in briefs:
        assert cell(store, None, name, briefs) == cell(store, None, name, desired)
    assert any(c["namespace"] or c["address"] for c in cells(store, None, briefs))


def test_status_reads_the_briefs_without_git_or_the_spec(tmp_path: Path) -> None:
    store, desired = _state(tmp_path, "fleet", applied=1)
    store.set_setting("fleet.current.cells", json.dumps(fleet_brief(desired)))
    store.close()
    shutil.rmtree(tmp_path / "fleet")  # the repository is gone: only the briefs can tell
    probe = (
        "import sys, json; from cellops.cli.main import main\ncode = 0\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print('MODULES', json.dumps(sorted(sys.modules)))\nsys.exit(code)"
    )
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "fleet.db").rename(state / "cellops.db")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            "status",
            str(tmp_path),
            "--state-dir",
            str(state),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out, _, modules = result.stdout.rpartition("MODULES ")
    listed = {c["name"] for c in json.loads(out)["cells"]}
    assert listed == set(desired.cells)
    loaded = set(json.loads(modules))
    assert not {"pydantic", "cellops.spec.cell", "cellops.render", "yaml"} & loaded


def _kept(revision: str) -> list[str]:
    def one(cell: object) -> str:
        return json.dumps({"revision": revision, "cells": {"eu-1": cell}})

    local = {"type": "local", "address": "127.0.0.9"}
    return [
        "not JSON",
        "[" * 100_000,  # deeper than the JSON parser goes
        json.dumps([revision]),
        json.dumps({"revision": revision, "cells": "eu-1"}),
        json.dumps({"revision": revision}),
        one(1),
        one({"labels": {}, "spec": "local", "services": []}),
        one({"labels": {"ring": 1}, "spec": {"backend": local}, "services": []}),
        one({"labels": {}, "spec": {"backend": local}, "services": "ledger"}),
        one({"labels": {}, "spec": {"backend": {"type": "ftp"}}, "services": []}),
        one({"labels": {}, "spec": {"backend": {**local, "address": ["x"]}}, "services": []}),
        json.dumps({"revision": "0" * 40, "cells": {}}),  # another revision's
    ]


def test_briefs_that_are_damaged_or_of_another_revision_are_not_trusted(tmp_path: Path) -> None:
    from cellops.cli.records import Records

    store, desired = _state(tmp_path, "fleet", applied=2)
    store.close()
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "fleet.db").rename(state / "cellops.db")
    with Records(str(tmp_path / "fleet"), state) as records:
        rendered = records.cells()  # no briefs kept: the revision rendered from Git
        assert {c["name"] for c in rendered} == set(desired.cells)
        for kept in _kept(desired.revision):
            records.store.set_setting("fleet.current.cells", kept)
            assert records.briefs() is None, kept[:80]
            assert records.cells() == rendered
            assert records.cell("eu-1") == next(c for c in rendered if c["name"] == "eu-1")
        records.store.set_setting("fleet.current.cells", json.dumps(fleet_brief(desired)))
        assert records.briefs() is not None and records.cells() == rendered
