"""A cell agent survives a malformed desired state: it keeps what it runs and reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.local_cell import Cells, fresh_address, get, serving, wait_for, write_app


def test_a_malformed_desired_state_does_not_stop_the_agent(tmp_path: Path) -> None:
    cell = tmp_path / "cell"
    cell.mkdir()
    (cell / "desired.json").write_text(json.dumps({"services": {"svc": {"hash": "h"}}}))
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cellops.backends.local.agent",
            "--cell-root",
            str(cell),
            "--host",
            fresh_address(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 10
        while not (cell / "status.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # several ticks over the malformed file
        assert agent.poll() is None, "the agent died"
        status = json.loads((cell / "status.json").read_text())
        assert status["services"] == {}
        assert time.time() - status["heartbeat"] < 3
    finally:
        agent.terminate()
        output, _ = agent.communicate(timeout=10)
        proxy = json.loads((cell / "proxy.json").read_text())  # it outlives the agent
        os.kill(proxy["pid"], signal.SIGTERM)
    assert "ignoring a malformed desired.json" in output


def test_a_new_agent_that_cannot_read_the_desired_state_changes_nothing(
    tmp_path: Path,
) -> None:
    cells = Cells(tmp_path, write_app(tmp_path / "app"))
    try:
        cell = cells("garbled")
        first = cell.start_agent()
        cell.apply({"web": cell.service("w1", replicas=2)})
        pods = wait_for("2 ready replicas", lambda: cell.ready("web", 2), 15)
        serving(cell, 8080, pods)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        cell.paths.desired.write_text("{not json")

        second = cell.start_agent()
        wait_for("the new agent to report", lambda: cell.status().get("pid") == second.pid, 15)
        for _ in range(10):  # several ticks: the replicas run on, the port still routes
            time.sleep(0.1)
            assert {r["pid"] for r in cell.records()} == {p["pid"] for p in pods}
            assert get(cell.host, 8080)["replica"] in {p["id"] for p in pods}
        assert second.poll() is None
    finally:
        cells.finish()
