"""Every malformed or hostile revision under tests/fixtures/bad/ is rejected, naming the file.

A case is a folder: `case.yaml` says what to change in the base fleet and which errors to
expect; `files/` holds files laid over the base fleet (same relative paths). `case.yaml`:

    description: what the case is about
    previous: true            # commit the base fleet first: rules that compare revisions
    remove: [path, ...]       # files or folders of the base fleet to delete
    kubernetesCell: true      # add cells/k8s.yaml, a Kubernetes cell: services' manifests/
                              # are then built and checked, as for a real cluster
    symlinks: {path: target}  # links to make, in order (so chains can be built)
    generate: {path: bytes}   # a file of that many filler bytes (oversized documents)
    expect: [{file, line, field, message}, ...]   # errors that must be among those found

Each case is judged as the controller judges a commit (the compiler with its Kubernetes
check, manifests exported from Git and built), so no cell is ever touched; it must be
rejected with the expected errors and without any unexpected exception.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cellops.cli.app import app
from cellops.cli.common import edge_checks
from cellops.model.errors import RevisionRejected
from cellops.model.problems import Severity
from cellops.pipeline import Compiler
from cellops.source.git import GitSource
from cellops.spec.loader import load_revision
from tests.fleetrepo import FIXTURES, FleetRepo

CASES = sorted(p for p in (FIXTURES / "bad").iterdir() if (p / "case.yaml").is_file())
CELLOPS = str(Path(sys.executable).parent / "cellops")
KUBERNETES_CELL = """\
apiVersion: cellops.dev/v1
kind: Cell
metadata:
  name: k8s
  labels: {region: eu, ring: main}
spec:
  backend: {type: kubernetes, context: kind-k8s}
  capacity:
    maxTenants: 10
"""


def build_case(case: Path, where: Path) -> tuple[FleetRepo, dict[str, object]]:
    spec = yaml.safe_load((case / "case.yaml").read_text())
    repo = FleetRepo(where)
    previous = None
    if spec.get("previous"):
        previous = repo.commit("base fleet")
    for relative in spec.get("remove", []):
        repo.remove(relative)
    if spec.get("kubernetesCell"):
        repo.write("cells/k8s.yaml", KUBERNETES_CELL)
    if (case / "files").is_dir():
        shutil.copytree(case / "files", where, dirs_exist_ok=True)
    for relative, target in (spec.get("symlinks") or {}).items():
        link = where / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()
        os.symlink(target, link)
    for relative, size in (spec.get("generate") or {}).items():
        repo.write(relative, b"# filler\n" + b"x" * int(size))
    spec["_previous"] = previous
    return repo, spec


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 200


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_revision_is_rejected_with_file_and_line(case: Path, tmp_path: Path) -> None:
    repo, spec = build_case(case, tmp_path / "fleet")
    head = repo.commit("bad change")
    source = GitSource(repo.path)
    previous = load_revision(source.snapshot(str(spec["_previous"]))) if spec["_previous"] else None
    compiler = Compiler(source, checks=edge_checks(repo.path, None, tmp_path / "scratch"))
    with pytest.raises(RevisionRejected) as caught:
        compiler.revision(head, previous=previous)
    errors = [p for p in caught.value.problems if p.severity is Severity.ERROR]
    assert errors, "rejected without an error"
    assert all(p.file for p in errors), "an error names no file:\n" + "\n".join(map(str, errors))
    assert not any("Traceback" in p.message for p in errors)
    for expected in spec["expect"]:
        matches = [
            p
            for p in errors
            if p.file == expected["file"]
            and p.line == expected.get("line")
            and expected["message"].lower() in p.message.lower()
            and expected.get("field", p.field) == p.field
        ]
        assert matches, f"expected {expected}, got:\n" + "\n".join(map(str, errors))


POISON = ["cellops.yaml", "cells/eu-1.yaml", "services/api/service.yaml"]


@pytest.mark.parametrize("document", POISON)
def test_a_poison_commit_is_one_line_per_command_never_a_traceback(
    document: str, tmp_path: Path
) -> None:
    """`x: &a [*a]` raised RecursionError out of the loader: validate printed a traceback."""
    repo = FleetRepo(tmp_path / "fleet")
    repo.commit("good")
    repo.write(document, repo.read(document) + "x: &a [*a]\n")
    repo.commit("poison")
    for command in (["validate"], ["plan"], ["render", "--cell", "eu-1"]):
        done = subprocess.run(
            [CELLOPS, *command, str(repo.path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 1, (command, output)
        assert "Traceback" not in output, (command, output)
        assert f"{document}:" in output and "anchors and aliases are not allowed" in output
        assert "could not judge" not in output, (command, output)


def test_an_unforeseen_error_while_judging_is_a_rejection_in_one_line(
    fleet: FleetRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug a commit provoked")

    monkeypatch.delenv("CELLOPS_DEBUG", raising=False)
    monkeypatch.setattr("cellops.cli.validate.load_revision", broken)
    monkeypatch.setattr("cellops.pipeline.load_revision", broken)
    monkeypatch.setattr("cellops.cli.render.load_revision", broken)
    for command in (["validate"], ["plan"], ["render", "--cell", "eu-1"]):
        result = CliRunner().invoke(app, [*command, str(fleet.path)])
        assert result.exit_code == 1, (command, result.output)
        assert isinstance(result.exception, SystemExit), (command, result.exception)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines == [
            "✗ cellops could not judge this revision (RuntimeError: a bug a commit"
            " provoked): it is rejected. This is a bug in cellops; CELLOPS_DEBUG=1 shows where."
        ], (command, result.output)
