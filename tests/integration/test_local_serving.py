"""A local cell's serving path, for real: the proxy is a process of its own that the agent
starts, restarts and adopts; it half-closes like TCP does; a port it cannot listen on
makes the service unhealthy; and a replica leaves no process of its group behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from cellops.backends.local import process
from cellops.backends.local.backend import LocalCells
from cellops.health import Health
from tests.integration.local_cell import APP, Cells, get, serving, wait_for, write_app

pytestmark = pytest.mark.slow

# Reads until the client is done sending, then answers: only a proxy that half-closes
# (instead of closing) lets the answer through.
UNTIL_EOF_APP = r"""
import os, socket, threading

def serve(conn):
    with conn:
        data = b""
        try:
            while chunk := conn.recv(65536):
                data += chunk
            conn.sendall(b"got %d bytes, ending %s" % (len(data), data[-8:]))
        except OSError:
            pass

server = socket.create_server((os.environ["HOST"], int(os.environ["PORT"])))
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

# The usual app, after it forked a child that ignores SIGTERM (its pid in CONTROL_DIR).
FORKING_APP = (
    r"""
import os, subprocess, sys
_child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
with open(os.path.join(os.environ["CONTROL_DIR"], f"child-of-{os.getpid()}"), "w") as out:
    out.write(str(_child.pid))
"""
    + APP
)


@pytest.fixture
def cells(tmp_path: Path, request: pytest.FixtureRequest) -> Cells:
    made = Cells(tmp_path, write_app(tmp_path / "app"))
    request.addfinalizer(made.finish)
    return made


def test_a_client_that_stops_sending_still_gets_its_answer(cells: Cells, tmp_path: Path) -> None:
    cell = cells("halfclose")
    cell.start_agent()
    code = write_app(tmp_path / "until-eof", UNTIL_EOF_APP)
    tcp = {"readiness": {"tcp": {"port": "http"}, "periodSeconds": 1}}
    cell.apply({"eof": cell.service("e1", cwd=code, probes=tcp)})
    wait_for("a ready replica", lambda: cell.ready("eof", 1), 15)
    wait_for("an answer to a short request", lambda: _half_closed(cell.host, b"ping"), 10)

    payload = os.urandom(100_000).hex().encode()  # more than one read of the proxy
    assert _half_closed(cell.host, payload) == b"got %d bytes, ending %s" % (
        len(payload),
        payload[-8:],
    )


def _half_closed(host: str, payload: bytes) -> bytes:
    """Send `payload`, shut down the sending side, read the answer to its end."""
    with socket.create_connection((host, 8080), timeout=10) as client:
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)  # done sending; still reading
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := client.recv(65536):
                answer += chunk
    return answer


def test_a_replica_leaves_no_process_of_its_group_behind(cells: Cells, tmp_path: Path) -> None:
    cell = cells("group")
    control = cell.control()
    cell.start_agent()
    code = write_app(tmp_path / "forking", FORKING_APP)
    cell.apply({"web": cell.service("f1", cwd=code)})
    (pod,) = wait_for("a ready replica", lambda: cell.ready("web", 1), 15)
    child = int((control / f"child-of-{pod['pid']}").read_text())
    assert process.start_time(child) is not None

    os.kill(pod["pid"], signal.SIGKILL)  # the leader alone dies: its child is left
    wait_for("the child of the dead leader to be stopped", lambda: not _alive(child), 10)
    (again,) = wait_for(
        "the replica restarted",
        lambda: [p for p in cell.pods("web") if p["pid"] != pod["pid"] and p["ready"]],
        15,
    )

    # stopped on purpose: the leader exits on SIGTERM, its child ignores it
    second = int((control / f"child-of-{again['pid']}").read_text())
    cell.apply({"web": cell.service("f1", cwd=code, replicas=0)})
    wait_for("the replica gone", lambda: not cell.pods("web") and not cell.records(), 15)
    wait_for("its child to be stopped too", lambda: not _alive(second), 10)


def _alive(pid: int) -> bool:
    return process.start_time(pid) is not None


def test_a_dead_proxy_is_restarted_and_reported(cells: Cells) -> None:
    cell = cells("proxy")
    agent = cell.start_agent()
    cell.apply({"web": cell.service("w1", replicas=2)})
    serving(cell, 8080, wait_for("2 ready replicas", lambda: cell.ready("web", 2), 15))
    first = cell.proxy()
    assert first["pid"] != agent.pid and first["listeners"] == {"8080": "bound"}
    assert cell.status()["proxy"] == {"pid": first["pid"], "running": True}

    os.kill(first["pid"], signal.SIGKILL)
    killed = time.monotonic()
    wait_for("the service port to answer again", lambda: _answers(cell.host), 15, poll=0.01)
    print(f"the service port answered again {time.monotonic() - killed:.2f}s after")
    again = cell.proxy()
    assert again["pid"] != first["pid"] and again["listeners"] == {"8080": "bound"}
    status = wait_for("the repair in the status", lambda: _repaired(cell.status()), 5)
    (repair,) = status["repairs"]
    assert repair["service"] == "web"
    assert repair["what"] == f"the cell's proxy (pid {first['pid']}) exited; restarted"
    assert agent.poll() is None


def _answers(host: str) -> bool:
    try:
        return bool(get(host, 8080, timeout=1))
    except (OSError, AssertionError):
        return False


def _repaired(status: dict[str, object]) -> dict[str, object] | None:
    return status if status.get("repairSeq") == 1 else None


def test_a_port_the_proxy_cannot_listen_on_makes_the_service_unhealthy(
    cells: Cells, tmp_path: Path
) -> None:
    cell = cells("taken")
    squatter = socket.create_server((cell.host, 8080))  # someone else's listener
    try:
        cell.start_agent()
        applied = cell.apply({"web": cell.service("w1")})
        wait_for("a ready replica", lambda: cell.ready("web", 1, applied=applied), 15)
        listeners = wait_for(
            "the listener's failure in the status",
            lambda: (cell.status()["services"]["web"].get("listeners") or {}).get("8080"),
            10,
        )
        assert listeners.startswith("failed: cannot listen on") and "in use" in listeners
        seen = LocalCells(tmp_path / "state", lambda tree, target: None).observe("taken")
        web = seen.services["web"]
        assert web.health is Health.DEGRADED, web
        assert web.reason.startswith(f"port 8080 is not served: cannot listen on {cell.host}:8080")
    finally:
        squatter.close()

    # freed: the proxy listens at its next attempt, and the service is healthy again
    backend = LocalCells(tmp_path / "state", lambda tree, target: None)
    wait_for(
        "the service healthy",
        lambda: backend.observe("taken").services["web"].health is Health.HEALTHY,
        10,
    )
    assert get(cell.host, 8080)["version"] == ""
