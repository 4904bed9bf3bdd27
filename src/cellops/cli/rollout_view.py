"""A rollout as text (`rollout status`, `describe rollout`): its state and why it waits,
then each wave by the name the fleet gave it, its cells, their steps and reasons."""

from __future__ import annotations

from typing import Any

from cellops.cli.table import age, fields, render

# How `rollout status` exits once a rollout has ended: 0 it reached every planned cell
# (or a newer revision took over), 1 it halted or was aborted.
FAILED = frozenset({"halted", "aborted"})


def rollout_text(found: dict[str, Any]) -> str:
    paused = " (paused)" if found["paused"] else ""
    head = [
        ("Rollout", f"#{found['id']}"),
        ("Revision", found["revision"]),
        ("From", found["base"] or "(nothing)"),
        ("State", f"{found['state']}{paused}"),
        ("Waiting", found["waiting"] if found["state"] == "running" else None),
        ("Reason", found["reason"] if found["state"] != "running" and found["reason"] else None),
        ("Started", f"{found['created_at']} ({age(found['created_at'])} ago)"),
        ("Updated", f"{found['updated_at']} ({age(found['updated_at'])} ago)"),
    ]
    policy = found.get("policy")
    if policy:
        head.append(("Policy", _policy(policy)))
    rows: list[list[object]] = []
    for wave in found["plan"]:
        for i, cell in enumerate(wave["cells"]):
            rows.append(
                [
                    _wave_label(wave) if i == 0 else "",
                    wave["status"] if i == 0 else "",
                    cell["cell"],
                    cell["step"],
                    ", ".join(f"{c['service']} {c['action']}" for c in cell["changes"]),
                    cell["reason"],
                ]
            )
    table = render(["wave", "status", "cell", "step", "changes", "reason"], rows)
    return fields([(k, v) for k, v in head if v is not None]) + "Waves:\n" + _indent(table)


def _wave_label(wave: dict[str, Any]) -> str:
    label = str(wave["name"])
    if wave["batches"] > 1:
        label += f" {wave['batch']}/{wave['batches']}"
    if wave["canary"] and wave["name"] != "canary":
        label += " (canary)"
    if wave.get("approval") == "manual":
        label += " (approved)" if wave.get("approved") else " (needs approval)"
    return label


def _policy(policy: dict[str, Any]) -> str:
    parts = [
        f"progress deadline {policy['progress_deadline']:.0f}s"
        if policy.get("progress_deadline") is not None
        else None,
        f"failure budget {policy['failure_budget']}"
        if policy.get("failure_budget") is not None
        else None,
        f"on failure {policy['on_failure']}" if policy.get("on_failure") else None,
    ]
    return ", ".join(p for p in parts if p)


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


def exit_code(found: dict[str, Any] | None) -> int:
    return 1 if found is not None and found["state"] in FAILED else 0
