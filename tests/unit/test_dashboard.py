"""The dashboard's pure parts: the matrix's groups and pages, the charts' markup, which
operator buttons apply, the countdown, where a login may send the browser, log tails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cellops.backends.local.layout import cell_paths
from cellops.dashboard import matrix
from cellops.dashboard.charts import Bar, Day, bars, daily, seconds
from cellops.dashboard.grid import squares
from cellops.dashboard.logtail import MAX_BYTES, last_lines, tails
from cellops.dashboard.panels import actions, countdown, wave_rows
from cellops.dashboard.session import safe_next
from cellops.store.planrecord import PlanRecord, PolicyRecord, WaveRecord
from cellops.store.records import Phase, Rollout, RolloutState


def cell(
    name: str, region: str | None, ring: str | None, healths: dict[str, str]
) -> dict[str, Any]:
    services = [
        {
            "service": s,
            "health": h,
            "revision": "f" * 40,
            "since": "2026-11-30T10:00:00.000Z",
            "reason": "",
        }
        for s, h in healths.items()
    ]
    worst = "degraded" if "degraded" in healths.values() else "healthy"
    return {"name": name, "region": region, "ring": ring, "health": worst, "services": services}


def fleet(count: int, services: int = 50) -> list[dict[str, Any]]:
    return [
        cell(
            f"cell-{i:04d}",
            f"r{i % 3}",
            "canary" if i < 3 else "main",
            {
                f"svc-{s:02d}": ("degraded" if (i, s) == (7, 3) else "healthy")
                for s in range(services)
            },
        )
        for i in range(count)
    ]


def test_groups_count_each_region_and_ring_by_health() -> None:
    found = matrix.groups(fleet(1000))
    assert [(g["region"], g["ring"]) for g in found][:2] == [("r0", "canary"), ("r0", "main")]
    assert sum(g["cells"] for g in found) == 1000
    r1 = next(g for g in found if (g["region"], g["ring"]) == ("r1", "main"))
    assert r1["health"] == {"degraded": 1, "healthy": 331}  # cell-0007 is in r1, cell-0001 a canary
    assert list(r1["health"]) == ["degraded", "healthy"]  # the worst first


def test_a_page_of_the_matrix_at_a_thousand_cells() -> None:
    cells = fleet(1000)
    first = matrix.matrix(cells)
    assert first["total"] == 1000 and len(first["services"]) == 50
    assert sum(len(g["cells"]) for g in first["groups"]) == matrix.PAGE
    assert first["previous"] is None and first["next"] == matrix.PAGE
    row = first["groups"][0]["cells"][0]
    assert len(row["squares"]) == 50 and row["squares"][0]["revision"] == "f" * 12
    last = matrix.matrix(cells, offset=950, limit=100)
    assert last["next"] is None and last["previous"] == 850
    assert sum(len(g["cells"]) for g in last["groups"]) == 50
    # grouped: one heading per (region, ring) run, cells sorted within
    regions = [(g["region"], g["ring"]) for g in first["groups"]]
    assert regions == sorted(set(regions))
    only = matrix.matrix(cells, region="r1", health="degraded")
    assert only["total"] == 1 and only["groups"][0]["cells"][0]["name"] == "cell-0007"


def test_a_cell_without_a_service_has_an_empty_square_and_no_labels_group_as_dash() -> None:
    cells = [cell("a", None, None, {"web": "healthy"}), cell("b", None, None, {"db": "healthy"})]
    page = matrix.matrix(cells)
    assert page["services"] == ["db", "web"]
    squares = [c["squares"] for c in page["groups"][0]["cells"]]
    assert squares[0][0] is None and squares[1][1] is None
    assert matrix.matrix(cells, region="-")["total"] == 2


def test_charts_escape_labels_and_scale_to_the_largest() -> None:
    svg = str(
        bars([Bar("<b>web</b>", 10.0, "10 s"), Bar("db", 5.0, "5 s"), Bar("x", None, "-")], "t")
    )
    assert "<b>web</b>" not in svg and "&lt;b&gt;web&lt;/b&gt;" in svg
    assert 'width="290.0"' in svg and 'width="145.0"' in svg and 'width="0.0"' in svg
    assert "nothing in this window" in str(bars([], "empty"))
    columns = str(daily([Day("11-29", 2, 1, 0), Day("11-30", 0, 0, 0)], "per day"))
    assert columns.count("<rect") == 2 and "11-29: 1 failed" in columns
    assert [seconds(v) for v in (None, 4.25, 42, 90, 7200, 172800)] == [
        "-",
        "4.2 s",
        "42 s",
        "1.5 min",
        "2.0 h",
        "2.0 d",
    ]


def view(
    state: str = "running", paused: bool = False, phase: str = "apply", manual: bool = False
) -> dict[str, Any]:
    wave = {
        "name": "rest",
        "status": "current",
        "approval": "manual" if manual else "auto",
        "approved": False,
    }
    return {"state": state, "paused": paused, "phase": phase, "plan": [wave]}


def labels(found: list[dict[str, Any]]) -> list[str]:
    return [a["label"] for a in found]


def test_the_buttons_that_apply_to_the_rollout_now() -> None:
    assert labels(actions(view())) == ["pause", "abort"]
    assert labels(actions(view(phase="bake"))) == ["pause", "promote", "abort"]
    manual = actions(view(manual=True))
    assert labels(manual) == ["pause", "approve", "abort"] and manual[1]["body"] == {"wave": "rest"}
    assert labels(actions(view(paused=True))) == ["resume", "abort"]
    assert labels(actions(view(state="halted"))) == ["retry"]
    assert labels(actions(view(state="aborted"))) == ["retry"]
    assert actions(view(state="completed")) == []
    assert actions(view())[-1]["confirm"]  # an abort is confirmed first


def rollout(
    phase: Phase, *, paused: bool = False, baked: float = 0.0, elapsed: float = 0.0
) -> Rollout:
    wave = WaveRecord("canary", 1, 1, True, 30.0, ())
    plan = PlanRecord(waves=(wave,), policy=PolicyRecord(progress_deadline=120.0))
    return Rollout(
        1,
        "a" * 40,
        None,
        RolloutState.RUNNING,
        plan,
        0,
        phase,
        0.0,
        elapsed,
        baked,
        0,
        paused,
        "",
        0.0,
        0.0,
    )


def test_the_countdown_is_the_bake_or_the_progress_deadline() -> None:
    assert countdown(rollout(Phase.BAKE, baked=12.0)) == {"what": "bake ends", "seconds": 18.0}
    assert countdown(rollout(Phase.PROGRESS, elapsed=20.0)) == {
        "what": "progress deadline",
        "seconds": 100.0,
    }
    assert countdown(rollout(Phase.APPLY)) is None
    assert countdown(rollout(Phase.BAKE, paused=True)) is None


def test_a_login_goes_back_only_to_a_path_of_this_site() -> None:
    assert safe_next("/rollout?id=3") == "/rollout?id=3"
    for bad in (
        None,
        "",
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "rollout",
    ):
        assert safe_next(bad) == "/"


def test_log_tails_read_only_the_end_of_each_replica_log(tmp_path: Path) -> None:
    folder = cell_paths(tmp_path, "c1").logs("web")
    folder.mkdir(parents=True)
    (folder / "web-0.log").write_text("".join(f"line {i}\n" for i in range(100)))
    big = folder / "web-1.log"
    big.write_bytes(b"x" * (MAX_BYTES * 3) + b"\nlast one\n")
    status = cell_paths(tmp_path, "c1").status
    status.write_text('{"services": {"web": {"pods": [{"id": "web-0"}]}}}')
    found = tails(tmp_path, "c1", ["web", "db"], lines=3)
    assert [(t.replica, t.lines, t.running) for t in found] == [
        ("web-0", ["line 97", "line 98", "line 99"], True),  # the running one first
        ("web-1", ["last one"], False),  # the cut first line is left out
    ]
    assert last_lines(tmp_path / "nope.log", 5) == []


def test_the_squares_are_one_cell_per_service_escaped() -> None:
    page = matrix.matrix([cell("a", None, None, {"web": "healthy", "db": "degraded"})])
    row = page["groups"][0]["cells"][0]
    row["squares"][0]["reason"] = '<script>"x"</script>'
    html = str(squares(row, page["services"], wide=False))
    assert html.count("<td") == 2 and 'class="sq h-degraded"' in html
    assert "<script>" not in html and "&lt;script&gt;&#34;x&#34;" in html
    assert "<code>fffffff</code>" in str(squares(row, page["services"], wide=True))
    gap = matrix.matrix(
        [cell("a", None, None, {"web": "healthy"}), cell("b", None, None, {"db": "healthy"})]
    )
    assert '<td class="sq none"></td>' in str(
        squares(gap["groups"][0]["cells"][0], gap["services"], False)
    )


def test_a_big_wave_lists_the_cells_to_look_at_first_and_counts_the_rest() -> None:
    steps = ["good"] * 150 + ["pending"] * 300 + ["failed", "applied"]
    cells = [{"cell": f"c{i}", "step": s} for i, s in enumerate(steps)]
    shown, more = wave_rows(cells, limit=100)
    assert [c["step"] for c in shown[:2]] == ["failed", "applied"]
    assert len(shown) == 100 and {c["step"] for c in shown[2:]} == {"good"}
    assert more == {"pending": 300, "good": 52}
    assert wave_rows(cells[:3]) == (cells[:3], {})
