"""The live view of `cellops up` and the demo names waves as the fleet does: a wave split
in batches is one wave ("rest 1/2", "rest 2/2"), not two waves both called "rest" and
counted as "wave 3/4"."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from cellops.cli.views import rollout_table
from cellops.store.planrecord import PlannedCellRecord, PlanRecord, WaveRecord
from cellops.store.records import Phase
from cellops.store.sqlite import SqliteStore


def wave(name: str, batch: int, batches: int, *cells: str) -> WaveRecord:
    planned = tuple(PlannedCellRecord(c, (("web", "changed"),)) for c in cells)
    return WaveRecord(name, batch, batches, name == "canary", 1.0, planned)


def test_batches_of_a_wave_are_named_by_the_wave(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cellops.db")
    plan = PlanRecord(
        (
            wave("canary", 1, 1, "eu-canary"),
            wave("eu", 1, 1, "eu-1", "eu-2"),
            wave("rest", 1, 2, "us-1", "us-2"),
            wave("rest", 2, 2, "us-3"),
        ),
        None,
    )
    rollout_id = store.create_rollout("a" * 40, None, plan, 1.0)
    store.update_rollout(rollout_id, 2.0, wave=2, phase=Phase.PROGRESS)
    [rollout] = store.rollouts(limit=1)
    console = Console(record=True, width=200)
    console.print(rollout_table(rollout, store.cell_steps(rollout_id)))
    text = console.export_text()
    store.close()
    assert "running, wave rest 1/2" in text and "3/4" not in text
    assert "▶ rest 1/2" in text and "rest 2/2" in text
