"""What the rollout, DORA and cell pages show beyond the API's read models: the bake or
deadline countdown, the operator's buttons that apply now, the DORA charts' series."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from cellops.dashboard.charts import Bar, Day, bars, daily, seconds
from cellops.query import rollouts
from cellops.store.records import Phase, Rollout, RolloutState
from cellops.store.sqlite import SqliteStore

WAVE_ROWS = 100  # cells listed per wave; the rest are counted by step
_RANK = {"rollback-failed": 0, "failed": 0, "kept": 0, "rolled-back": 1, "applied": 1}
_RANK |= {"healthy": 1, "pending": 3, "skipped": 3}
WINDOWS = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0, "90d": 90 * 86400.0}
MANY = 100_000


def rollout_panel(store: SqliteStore, rollout_id: int | None) -> dict[str, Any] | None:
    """The rollout (default: the latest) as the API shows it, with its countdown."""
    view = rollouts.rollout(store, rollout_id)
    if view is None:
        return None
    record = store.rollout(view["id"])
    assert record is not None
    view["countdown"] = countdown(record)
    for wave in view["plan"]:
        wave["shown"], wave["more"] = wave_rows(wave["cells"])
        wave["steps"] = dict(Counter(c["step"] for c in wave["cells"]).most_common())
    return view


def wave_rows(
    cells: list[dict[str, Any]], limit: int = WAVE_ROWS
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The cells a wave's table lists (those that need looking at first: failed, then
    moving, then the rest, in plan order), and how many more it leaves out, by step."""
    ranked = sorted(enumerate(cells), key=lambda pair: (_RANK.get(pair[1]["step"], 2), pair[0]))
    shown = [cell for _, cell in ranked[:limit]]
    return shown, dict(Counter(cell["step"] for _, cell in ranked[limit:]).most_common())


def countdown(record: Rollout) -> dict[str, Any] | None:
    """Seconds left of the current wave's bake, or of its progress deadline; None when
    the rollout is not waiting on a clock (ended, paused, applying)."""
    if not record.active or record.paused or record.wave >= len(record.plan):
        return None
    wave = record.plan[record.wave]
    if record.phase is Phase.BAKE:
        return {"what": "bake ends", "seconds": max(0.0, wave.bake_seconds - record.baked)}
    policy = record.plan.policy
    if record.phase is Phase.PROGRESS and policy is not None:
        left = max(0.0, policy.progress_deadline - record.elapsed)
        return {"what": "progress deadline", "seconds": left}
    return None


def actions(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The operator's buttons that apply to the rollout now: (label, API path, body)."""
    state = view["state"]
    if state in (RolloutState.HALTED, RolloutState.ABORTED):
        return [_button("retry", "/api/v1/rollout/retry")]
    if state != RolloutState.RUNNING:
        return []
    if view["paused"]:
        return [_button("resume", "/api/v1/rollout/resume"), _abort()]
    found = [_button("pause", "/api/v1/rollout/pause")]
    current = next((w for w in view["plan"] if w["status"] == "current"), None)
    if current is not None and current["approval"] == "manual" and not current["approved"]:
        found.append(_button("approve", "/api/v1/rollout/approve", {"wave": current["name"]}))
    if view["phase"] == Phase.BAKE:
        found.append(_button("promote", "/api/v1/rollout/promote"))
    return [*found, _abort()]


def _abort() -> dict[str, Any]:
    return _button("abort", "/api/v1/rollout/abort", confirm="End this rollout?")


def _button(
    label: str, path: str, body: dict[str, str] | None = None, confirm: str = ""
) -> dict[str, Any]:
    return {"label": label, "path": path, "body": body or {}, "confirm": confirm}


def dora_page(store: SqliteStore, now: float, window: str) -> dict[str, Any]:
    """The DORA report over `window` (a key of WINDOWS), with its charts."""
    from cellops.observe.dora import dora_report

    since = now - WINDOWS[window]
    report = dora_report(store, since, now)
    services: dict[str, dict[str, Any]] = report["services"]  # type: ignore[assignment]
    lead = [
        Bar(name, f["lead_time_seconds"]["p50"], seconds(f["lead_time_seconds"]["p50"]))
        for name, f in services.items()
    ]
    rates = [
        Bar(name, rate * 100, f"{rate:.0%}")
        if (rate := f["change_failure_rate"]) is not None
        # a service with no ended rollout has no rate
        else Bar(name, None, "-")
        for name, f in services.items()
    ]
    return {
        "report": report,
        "window": window,
        "windows": list(WINDOWS),
        "lead_chart": bars(lead, "lead time for changes (p50) per service"),
        "rate_chart": bars(rates, "change failure rate per service"),
        "daily_chart": daily(_days(store, since, now), "rollouts ended per day, by outcome"),
    }


def _days(store: SqliteStore, since: float, now: float) -> list[Day]:
    """Each UTC day of the window: rollouts that ended completed, halted, or otherwise."""
    counts: dict[str, Counter[str]] = {}
    day = since - since % 86400
    while day <= now:
        counts[_day(day)] = Counter()
        day += 86400
    for record in store.rollouts(limit=MANY):
        if record.active or not since <= record.updated_at <= now:
            continue
        outcome = {RolloutState.COMPLETED: "ok", RolloutState.HALTED: "failed"}
        counts.setdefault(_day(record.updated_at), Counter())[
            outcome.get(record.state, "other")
        ] += 1
    return [Day(label[5:], c["ok"], c["failed"], c["other"]) for label, c in counts.items()]


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")
