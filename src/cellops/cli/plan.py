"""`cellops plan`: which cells a commit changes, in which waves, in which order."""

from __future__ import annotations

from pathlib import Path

from cellops.cli.common import edge_checks, open_repo
from cellops.cli.output import Exit, Format, emit, errors, print_problems, say, short
from cellops.cli.params import Option, OutputOption, RepoArgument
from cellops.cli.table import echo
from cellops.cli.validate import rejecting_on_failure
from cellops.diff import Action
from cellops.model.errors import RevisionRejected
from cellops.pipeline import Compiler, PlanResult
from cellops.spec.fields import format_duration


@rejecting_on_failure
def plan(
    repo: Path = RepoArgument,
    to_rev: str = Option("HEAD", "--to", help="The revision to roll out."),
    from_rev: str | None = Option(
        None, "--from", help="The revision running now (default: the parent of --to)."
    ),
    output: Format = OutputOption,
) -> None:
    """Plan the rollout from one revision to another: waves, cells, services, actions.

    With no --from, the plan starts from the nearest valid ancestor of --to (its parent,
    unless that was rejected), or from nothing for the first commit.
    Exit status: 0 planned, 1 a revision is invalid, 3 unreadable.
    """
    compiler = Compiler(open_repo(repo), checks=edge_checks(repo, None))
    base = from_rev
    if base is None:
        base, skipped = compiler.last_valid_ancestor(to_rev)
        if skipped and output is Format.TEXT:
            say(
                f"note: {len(skipped)} invalid ancestor(s) passed over (the fleet keeps its"
                f" last valid revision); planning from {short(base)}",
                "yellow",
            )
    else:
        _refuse_a_rejected_base(compiler, base)
    try:
        result = compiler.plan(to_rev, base)
    except RevisionRejected as rejected:
        if output is Format.TEXT:
            print_problems(rejected.problems)
            say(f"✗ revision {short(rejected.revision)} is rejected", "red")
        else:
            emit(
                {
                    "rejected": rejected.revision,
                    "problems": [p.as_dict() for p in rejected.problems],
                },
                output,
            )
        raise SystemExit(Exit.REJECTED) from None
    if output is Format.TEXT:
        _print(result)
    else:
        emit(plan_document(result), output)


def _refuse_a_rejected_base(compiler: Compiler, base: str) -> None:
    """`--from` a rejected revision is bad usage (exit 2): no fleet ever ran it."""
    try:
        compiler.revision(base)
    except RevisionRejected as rejected:
        valid, _ = compiler.last_valid_ancestor(base)
        instead = f"--from {short(valid)}, its last valid ancestor" if valid else "no --from"
        errors.print(
            f"✗ --from {base}: revision {short(rejected.revision)} is rejected"
            f" ({len(rejected.problems)} problem(s); `cellops validate --rev {base}` lists"
            f" them), so no fleet runs it: plan with {instead}",
            markup=False,
        )
        raise SystemExit(Exit.USAGE) from None


def plan_document(result: PlanResult) -> dict[str, object]:
    plan = result.plan
    return {
        "from": result.before.id if result.before else None,
        "to": result.after.id,
        "waves": [
            {
                "index": w.index,
                "name": w.name,
                "batch": w.batch,
                "batches": w.batches,
                "canary": w.canary,
                "bake": format_duration(w.bake),
                "cells": [
                    {
                        "cell": c.cell,
                        "changes": [
                            {
                                "service": ch.service,
                                "action": str(ch.action),
                                "from": ch.from_hash,
                                "to": ch.to_hash,
                            }
                            for ch in c.changes
                        ],
                    }
                    for c in w.cells
                ],
            }
            for w in plan.waves
        ],
        "skipped": [{"cell": s.cell, "reason": s.reason} for s in plan.skipped],
        "summary": _counts(result),
        "warnings": [p.as_dict() for p in result.after.warnings],
    }


def _counts(result: PlanResult) -> dict[str, int]:
    counts = {str(a): result.plan.count(a) for a in Action if a is not Action.UNCHANGED}
    counts["unchanged"] = result.changes.count(Action.UNCHANGED)
    counts["waves"] = len({w.name for w in result.plan.waves})  # as the fleet names them
    counts["batches"] = len(result.plan.waves)
    counts["cells"] = len(result.plan.cells)
    counts["skipped"] = len(result.plan.skipped)
    return counts


def _print(result: PlanResult) -> None:
    print_problems(result.after.warnings)
    before = short(result.before.id) if result.before else "(nothing)"
    say(f"Plan {before} → {short(result.after.id)}", "bold")
    if result.plan.waves:
        rows: list[list[object]] = []
        for wave in result.plan.waves:
            batch = f" (batch {wave.batch}/{wave.batches})" if wave.batches > 1 else ""
            label = wave.name + batch
            if wave.canary and wave.name != "canary":
                label += " (canary)"
            for i, cell in enumerate(wave.cells):
                changes = ", ".join(f"{ch.service} {ch.action}" for ch in cell.changes)
                bake = format_duration(wave.bake) if i == 0 else ""
                rows.append([label if i == 0 else "", cell.cell, changes, bake])
        echo(["wave", "cell", "changes", "bake"], rows)
    for skipped in result.plan.skipped:
        say(f"skipped {skipped.cell}: {skipped.reason}", "yellow")
    c = _counts(result)
    batches = f" in {c['batches']} batches" if c["batches"] > c["waves"] else ""
    say(
        f"{c['waves']} wave(s){batches}, {c['cells']} cell(s): {c['created']} created,"
        f" {c['configured']} configured, {c['deleted']} deleted, {c['unchanged']} unchanged,"
        f" {c['skipped']} cell(s) skipped"
    )
