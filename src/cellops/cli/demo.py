"""`cellops demo`: the example fleet from first commit to a planned change, in a temp repo.

This first form validates and plans (nothing is started yet): it shows the initial rollout,
a one-service change that touches every cell canary-first, an override that touches one
region, and a bad commit that is rejected before it could reach any cell.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import typer

from cellops.cli.init import example_fleet
from cellops.cli.output import Exit, console, print_problems
from cellops.cli.plan import _print as print_plan
from cellops.model.errors import RevisionRejected
from cellops.pipeline import Compiler, PlanResult
from cellops.source.git import GitSource, commit_all, create_repository


def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the demo fleet repo afterwards."),
) -> None:
    """Run the example fleet through validate and plan, in a temporary Git repo."""
    workdir = Path(tempfile.mkdtemp(prefix="cellops-demo-"))
    repo = workdir / "fleet"
    shutil.copytree(example_fleet(), repo, ignore=shutil.ignore_patterns("__pycache__"))
    ok = True
    try:
        first = create_repository(repo, "Initial fleet")
        compiler = Compiler(GitSource(repo))
        ok &= _step(
            "1. The first commit: every cell is created, canary first",
            compiler,
            first,
            None,
            expect_cells=6,
        )
        _edit(repo / "services/payments/app/server.py", 'VERSION = "1.0.0"', 'VERSION = "1.1.0"')
        second = commit_all(repo, "payments 1.1.0")
        ok &= _step(
            "2. New payments code: one service changes in every cell",
            compiler,
            second,
            first,
            expect_cells=6,
        )
        _edit(
            repo / "services/ledger/service.yaml",
            "  replicas: 2\n",
            "  replicas: 2\n  overrides:\n    - cells: {selector: {region: us-east-1}}\n"
            "      patch: {replicas: 4}\n",
        )
        third = commit_all(repo, "ledger: 4 replicas in us-east-1")
        ok &= _step(
            "3. An override for one region: only its cells change",
            compiler,
            third,
            second,
            expect_cells=3,
        )
        _edit(
            repo / "services/payments/service.yaml",
            "consumes: [ledger/v1]",
            "consumes: [ledger/v2]",
        )
        fourth = commit_all(repo, "payments: consume ledger/v2 (nobody provides it)")
        ok &= _rejected("4. A bad commit: rejected, no cell touched", compiler, fourth, third)
    finally:
        if keep:
            console.print(f"\nThe demo fleet repo is kept in {repo}", markup=False)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if not ok:
        console.print("[red]✗ the demo did not behave as expected[/]")
        raise typer.Exit(Exit.REJECTED)
    console.print(
        "\n[green]✓ demo complete[/]: every revision validated, planned or rejected as expected"
    )


def _step(title: str, compiler: Compiler, to: str, base: str | None, expect_cells: int) -> bool:
    console.rule(title)
    result: PlanResult = compiler.plan(to, base)
    print_plan(result)
    return len(result.plan.cells) == expect_cells and result.plan.waves[0].canary


def _rejected(title: str, compiler: Compiler, to: str, base: str) -> bool:
    console.rule(title)
    try:
        compiler.plan(to, base)
    except RevisionRejected as rejected:
        print_problems(rejected.problems)
        console.print(f"[red]✗[/] revision {to[:12]} is rejected; the fleet stays on {base[:12]}")
        return True
    return False


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise RuntimeError(f"{path}: the demo expected to find {old!r}")
    path.write_text(text.replace(old, new, 1))
