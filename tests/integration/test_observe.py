"""A real controller, detached, through a good release, a rejected revision and a canary
that crashes: `/metrics` passes `promtool check metrics`, `controller.log` is JSON lines
only, every notified event reaches a receiver verifying signatures, and `cellops dora`
reads the run back."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellops.store.records import RolloutState
from tests.integration.controller_harness import Fleet, ServiceDef, wait_for
from tests.integration.notify_receiver import Receiver

pytestmark = pytest.mark.slow
PROMTOOL = shutil.which("promtool")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    tag = hashlib.sha256(f"observe {tmp_path}".encode()).hexdigest()[:5]
    made = Fleet(tmp_path, f"o{tag}", [ServiceDef("web", 18093)], regions=("a",))
    yield made
    leftovers = made.down()
    assert not leftovers, f"processes outlived `cellops down`: {leftovers}"


def _scrape(port: int, token: str) -> str:
    """/metrics as Prometheus scrapes it: with a bearer token (any role)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return str(response.read().decode())


def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {series} in the scrape:\n{text}")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus) is not installed")
def test_metrics_logs_notifications_and_dora_of_a_real_run(fleet: Fleet, tmp_path: Path) -> None:
    receiver = Receiver("hook-secret")
    (tmp_path / "secret").write_text("push-secret\n")
    (tmp_path / "notify.yaml").write_text(
        json.dumps({"targets": [{"name": "r", "url": receiver.url, "secretEnv": "HOOK"}]})
    )
    try:
        _run(fleet, receiver, tmp_path)
    finally:
        receiver.close()


def _run(fleet: Fleet, receiver: Receiver, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *_cellops(),
            "up", str(fleet.repo.path), "--detach", "--state-dir", str(fleet.state),
            "--poll", "0.2s", "--webhook", "0", "--webhook-secret-file", str(tmp_path / "secret"),
            "--notify-config", str(tmp_path / "notify.yaml"),
        ],
        capture_output=True, text=True, timeout=90, check=False,
        env={**_env(), "HOOK": "hook-secret"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    first = fleet.wait_rollout(fleet.head, RolloutState.COMPLETED)
    fleet.repo.replace("cellops.yaml", "failureBudget: 0", "failureBudget: zero")
    rejected = fleet.commit("a typo")
    wait_for("the typo rejected", lambda: fleet.store.revision(rejected), timeout=30)
    fleet.repo.replace("cellops.yaml", "failureBudget: zero", "failureBudget: 0")
    bad = fleet.release("web", "v2", crash=True)
    fleet.wait_rollout(bad, RolloutState.HALTED, timeout=90)
    wait_for("the canary back", lambda: fleet.events(kind="recovered"), timeout=60)

    port = int(fleet.record()["webhook"])
    made = subprocess.run(
        [*_cellops(), "token", "create", "--role", "viewer", "--state-dir", str(fleet.state)],
        capture_output=True, text=True, timeout=60, check=True, env=_env(),
    )  # fmt: skip

    def rolled_back() -> str | None:
        text = _scrape(port, made.stdout.strip())
        return text if "cellops_rollback_duration_seconds_count 1.0" in text else None

    wait_for("the rollback in the metrics", rolled_back, timeout=30)
    text = _scrape(port, made.stdout.strip())  # the scrapes before are timed in this one
    scrapes = 'cellops_api_request_duration_seconds_count{code="200",method="GET",route="/metrics"}'
    assert _value(text, scrapes) >= 1.0
    checked = subprocess.run(
        [str(PROMTOOL), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert _value(text, 'cellops_revisions_total{verdict="rejected"}') == 1.0
    assert _value(text, 'cellops_revisions_total{verdict="accepted"}') == 2.0
    assert _value(text, 'cellops_rollbacks_total{result="done"}') >= 1.0
    assert _value(text, "cellops_commit_to_fleet_complete_seconds_count") == 1.0  # the first
    assert _value(text, "cellops_commit_to_canary_healthy_seconds_count") == 1.0
    assert _value(text, "cellops_reconcile_pass_duration_seconds_count") > 1.0
    assert (
        _value(
            text,
            f'cellops_rollout_info{{revision="{bad}",rollout="{first.id + 1}",state="halted"}}',
        )
        == 1.0
    )
    assert _value(text, f'cellops_cell_healthy{{cell="{fleet.prefix}-canary"}}') == 1.0

    lines = (fleet.state / "controller.log").read_text().splitlines()
    parsed = [json.loads(line) for line in lines]  # every line: one JSON event
    events = {p["event"] for p in parsed}
    assert {"revision-rejected", "cell-failed", "rollout-halted"} <= events, events
    assert all("timestamp" in p and "level" in p for p in parsed)

    wanted = {"rollout-started", "wave-done", "rollout-completed", "revision-rejected"}
    wanted |= {"rollout-halted", "rolled-back"}
    wait_for("every notified kind", lambda: wanted <= set(receiver.kinds()), timeout=60)
    assert receiver.refused == 0

    report = json.loads(
        fleet.cli("dora", str(fleet.repo.path), "--state-dir", fleet.state, "-o", "json").stdout
    )
    assert report["fleet"]["rollouts"] == 2 and report["fleet"]["change_failures"] == 1
    assert report["fleet"]["deployments"] == 1
    assert report["fleet"]["lead_time_seconds"]["count"] == 1
    assert report["cells"][f"{fleet.prefix}-canary"]["failures"] == 1
    assert fleet.store.revision(first.revision).committed_at is not None  # type: ignore[union-attr]

    example = Path(__file__).parents[2] / "examples" / "scorecard" / "legacy.csv"
    args = ("scorecard", str(fleet.repo.path), "--state-dir", fleet.state, "--baseline", example)
    card = json.loads(fleet.cli(*args, "-o", "json").stdout)
    assert card["fleet"]["baseline"]["deploys"] == 9
    assert card["fleet"]["cellops"]["deploys"] == 2  # the good rollout and the halted one
    assert card["fleet"]["cellops"]["change_failure_rate"] == 0.5
    assert card["escalations"]["cellops"]["halted rollouts"] == 1
    assert card["services"]["web"]["cellops"]["deploys"] == 2
    shown = fleet.cli(*args)
    assert shown.returncode == 0 and "baseline" in shown.stdout, shown.stdout + shown.stderr


def _cellops() -> list[str]:
    from tests.integration.controller_harness import CELLOPS

    return [CELLOPS]


def _env() -> dict[str, str]:
    import os

    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("CELLOPS_WEBHOOK_SECRET", None)
    return env
