"""The parallel-run scorecard: the old pipeline's CSV (every problem as FILE:LINE: FIELD:
message), cellops' rollouts as deploys, and the two side by side."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellops.dora.facts import RolloutFacts
from cellops.dora.scorecard import Deploy, Record, cellops_deploys, side_by_side
from cellops.observe.legacy import BaselineError, read_baseline

EXAMPLE = Path(__file__).parents[2] / "examples" / "scorecard" / "legacy.csv"
HEADER = "kind,service,start,end,result,note\n"


def test_the_example_file_reads() -> None:
    record = read_baseline(EXAMPLE)
    assert len(record.deploys) == 9
    assert sum(d.failed for d in record.deploys) == 2
    assert record.incidents == [("payments",), ("ledger",)]
    assert record.escalations == 3
    assert round(record.span / 86400, 1) == 11.1  # 11-02 10:00 to 11-13 11:16


def test_every_problem_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "legacy.csv"
    bad.write_text(
        HEADER
        + "deploy,payments,2026-11-02T10:00:00Z,,success,\n"  # line 2: no end
        + "deploy,,2026-11-02T10:00:00Z,2026-11-02T11:00:00Z,ok,\n"  # line 3: result, service
        + "outage,payments,yesterday,,,\n"  # line 4: kind, start
        + "deploy,ledger,2026-11-02T10:00:00Z,2026-11-02T09:00:00Z,success,\n"  # line 5
    )
    with pytest.raises(BaselineError) as caught:
        read_baseline(bad)
    assert caught.value.problems == [
        f"{bad}:2: end: required (ISO-8601, e.g. 2026-11-02T10:00:00Z)",
        f"{bad}:3: result: 'ok' is not one of success, failed, rolled-back",
        f"{bad}:3: service: a deploy names its service",
        f"{bad}:4: start: 'yesterday' is not an ISO-8601 time (2026-11-02T10:00:00Z)",
        f"{bad}:4: kind: 'outage' is not one of deploy, incident, page",
        f"{bad}:5: end: before its start",
    ]


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "legacy.csv"
    bad.write_text("kind,service,start,end\n")
    with pytest.raises(BaselineError, match=r"legacy.csv:1: header: missing result"):
        read_baseline(bad)


def test_rollouts_as_deploys_and_side_by_side() -> None:
    good = RolloutFacts(
        1, "a", 0.0, 100.0, "completed", 400.0,
        {"c1": ("web",), "c2": ("web", "api")},
        healthy_at={"c1": 150.0, "c2": 220.0},
    )  # fmt: skip
    halted = RolloutFacts(
        2, "b", 0.0, 1000.0, "halted", 1100.0, {"c1": ("web",)},
        failed=frozenset({"c1"}), halted=True,
    )  # fmt: skip
    deploys = cellops_deploys([good, halted])
    assert Deploy("", 100.0, 400.0, False) in deploys  # the fleet: start -> end
    assert Deploy("web", 100.0, 220.0, False) in deploys  # web: -> its last cell healthy
    assert Deploy("web", 1000.0, 1100.0, True) in deploys
    mine = Record(deploys, [("web",)], 1, 7 * 86400.0, {"halted rollouts": 1})
    theirs = Record([Deploy("web", 0.0, 3600.0, False)], [("web",), ()], 2, 14 * 86400.0)
    card = side_by_side(theirs, mine)
    fleet = card["fleet"]
    assert isinstance(fleet, dict)
    assert fleet["cellops"]["deploys"] == 2 and fleet["cellops"]["change_failure_rate"] == 0.5
    assert fleet["baseline"]["deploy_time_p50_seconds"] == 3600.0
    assert fleet["baseline"]["incidents_per_week"] == 1.0  # 2 over two weeks
    assert fleet["cellops"]["escalations_per_week"] == 1.0
    services = card["services"]
    assert isinstance(services, dict)
    assert services["web"]["cellops"]["deploy_time_p90_seconds"] == 120.0
    assert services["api"]["baseline"]["deploys"] == 0
