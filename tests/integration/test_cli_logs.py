"""`cellops logs` on a local cell's files as its agent writes them (status.json and one
log per replica): running and gone replicas marked, lines never re-wrapped, --since,
and -f following new output and new replicas."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.clirun import CELLOPS, cellops

LONG = "x" * 300 + " the end of a long line"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """Cell eu-1 runs web as replica web-a; web-old was replaced and is gone."""
    cell = tmp_path / "state" / "cells" / "eu-1"
    (cell / "logs" / "web").mkdir(parents=True)
    pod = {"id": "web-a", "pid": 4242, "ready": True, "restarts": 2, "state": "running"}
    status = {"services": {"web": {"pods": [pod], "replicas": 1}}}
    (cell / "status.json").write_text(json.dumps(status))
    (cell / "logs" / "web" / "web-a.log").write_text(f"listening\n{LONG}\n")
    old = cell / "logs" / "web" / "web-old.log"
    old.write_text("crashed: no key\n")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    return tmp_path / "state"


def test_running_and_gone_replicas_are_marked_and_lines_kept_whole(state: Path) -> None:
    result = cellops("logs", "eu-1", "web", "--state-dir", state, columns=40)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "==> web-a: running, pid 4242, ready, 2 restart(s); last output" in lines[0]
    assert lines[1:3] == ["listening", LONG]  # not cut or wrapped at 40 columns
    assert lines[3].startswith("==> web-old: gone (no longer run by the agent); last output")
    assert "last output 60m ago" in lines[3] or "last output 1h ago" in lines[3]
    assert lines[4] == "crashed: no key"


def test_since_leaves_out_replicas_that_wrote_nothing_since(state: Path) -> None:
    recent = cellops("logs", "eu-1", "web", "--since", "10m", "--state-dir", state)
    assert "web-a" in recent.stdout and "web-old" not in recent.stdout
    none = cellops("logs", "eu-1", "nope", "--since", "10m", "--state-dir", state)
    assert none.returncode == 2 and "no output from nope in cell eu-1 since 10m" in none.stderr


def test_each_line_is_dated_by_the_agents_notes_and_since_keeps_the_recent_ones(
    state: Path,
) -> None:
    log = state / "cells" / "eu-1" / "logs" / "web" / "web-a.log"
    log.write_text("booted\nwarming\nserving request 1\n")
    now = time.time()
    hour_ago, minute_ago = now - 3600, now - 60
    # as the agent notes them (logtimes.py): the first line an hour ago, all a minute ago
    (log.parent / "web-a.log.times").write_text(f"7 {hour_ago:.3f}\n34 {minute_ago:.3f}\n")
    iso = "%Y-%m-%dT%H:%M:%SZ"
    result = cellops("logs", "eu-1", "web", "--since", "10m", "--timestamps", "--state-dir", state)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    recent = time.strftime(iso, time.gmtime(minute_ago))
    assert lines[1:] == [f"{recent} warming", f"{recent} serving request 1"]  # not "booted"
    everything = cellops("logs", "eu-1", "web", "--timestamps", "--state-dir", state)
    assert everything.stdout.splitlines()[1:4] == [
        f"{time.strftime(iso, time.gmtime(hour_ago))} booted",
        f"{time.strftime(iso, time.gmtime(minute_ago))} warming",
        f"{time.strftime(iso, time.gmtime(minute_ago))} serving request 1",
    ]


@pytest.mark.slow
def test_follow_prints_new_lines_of_each_replica_and_of_new_ones(state: Path) -> None:
    logs = state / "cells" / "eu-1" / "logs" / "web"
    follower = subprocess.Popen(
        [CELLOPS, "logs", "eu-1", "web", "-f", "--timestamps", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        seen = [follower.stdout.readline() for _ in range(5)]  # what is there already
        assert seen[-1].endswith("Z crashed: no key\n"), seen  # dated by its last write
        with (logs / "web-a.log").open("a") as out:
            out.write("request 1\npartial")
        (logs / "web-b.log").write_text("web-b starting\n")
        wanted = {"[web-a] request 1", "[web-b] web-b starting", "==> web-b:"}
        printed = _read_until(follower, wanted, deadline=time.monotonic() + 60)
        assert all(any(w in line for line in printed) for w in wanted), printed
        stamped = next(line for line in printed if "[web-a] request 1" in line)
        assert stamped[:4].isdigit() and stamped[19] == "Z"  # 2026-11-30T10:00:00Z
        assert not any("partial" in line for line in printed)  # an unfinished line waits
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=30)
    assert follower.returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_follow_ends_cleanly_on_ctrl_c_or_sigterm(state: Path, sig: signal.Signals) -> None:
    follower = subprocess.Popen(
        [CELLOPS, "logs", "eu-1", "web", "-f", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        [follower.stdout.readline() for _ in range(5)]  # following now
        follower.send_signal(sig)
        follower.wait(timeout=60)
    finally:
        follower.kill()
    assert follower.returncode == 0


def _read_until(process: subprocess.Popen[str], wanted: set[str], deadline: float) -> list[str]:
    """Lines the process prints until each of `wanted` is in one, or the deadline."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stream = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    printed: list[str] = []
    while time.monotonic() < deadline and not all(
        any(w in line for line in printed) for w in wanted
    ):
        try:
            printed.append(lines.get(timeout=1.0))
        except queue.Empty:
            continue
    return printed


def test_a_kubernetes_cells_logs_are_the_clusters(tmp_path: Path) -> None:
    from cellops.store.records import InventoryItem
    from cellops.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "state" / "cellops.db")
    cell = {"spec": {"backend": {"type": "kubernetes", "context": "eks-eu", "namespace": "shop"}}}
    store.set_applied_cell("eu-1", json.dumps(cell))
    key = "apps/v1 Deployment shop web"
    store.track("eu-1", InventoryItem(key, 1, "h", "{}", '{"context": "eks-eu"}'))
    store.close()
    result = cellops("logs", "eu-1", "web", "--state-dir", tmp_path / "state")
    assert result.returncode == 2
    assert "eu-1 is a Kubernetes cell" in result.stderr
    assert "kubectl logs --context eks-eu -n shop -l app.kubernetes.io/name=web" in result.stderr
