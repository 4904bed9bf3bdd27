"""A cell agent survives a malformed desired state: it keeps what it runs and reports."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


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
            "127.77.251.9",
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
    assert "ignoring a malformed desired.json" in output
