"""`cellops up --listen`: one listener for the API, the push webhook and /metrics, over a
real controller and local cells; HTTPS with a certificate; misuse said in one line."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cellops.store.records import RolloutState
from tests.imagekit import local_tls
from tests.integration.controller_harness import Fleet, ServiceDef, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    tag = hashlib.sha256(f"api {tmp_path}".encode()).hexdigest()[:5]
    made = Fleet(tmp_path, f"p{tag}", [ServiceDef("web", 18094)], regions=("a",))
    yield made
    leftovers = made.down()
    assert not leftovers, f"processes outlived `cellops down`: {leftovers}"


def _token(fleet: Fleet, role: str) -> dict[str, str]:
    made = fleet.cli("token", "create", "--role", role, "--state-dir", fleet.state)
    assert made.returncode == 0, made.stderr
    return {"Authorization": f"Bearer {made.stdout.strip()}"}


def test_one_listener_serves_the_api_the_webhook_and_metrics(fleet: Fleet) -> None:
    fleet.start(extra=("--listen", "127.0.0.1:0"))
    url = str(fleet.record()["api"])
    assert url.startswith("http://127.0.0.1:")
    fleet.wait_rollout(fleet.head, RolloutState.COMPLETED)
    viewer, operator = _token(fleet, "viewer"), _token(fleet, "operator")
    assert requests.get(f"{url}/healthz", timeout=30).json() == {"status": "ok"}
    assert requests.get(f"{url}/metrics", timeout=30).status_code == 401
    scraped = requests.get(f"{url}/metrics", headers=viewer, timeout=30)
    assert scraped.status_code == 200 and "cellops_" in scraped.text
    push = requests.post(f"{url}/webhook", data=b"{}", timeout=30)
    assert push.status_code == 401 and "no webhook secret" in push.json()["error"]
    cells = requests.get(f"{url}/api/v1/cells", headers=viewer, timeout=30).json()["cells"]
    assert {c["name"] for c in cells} == set(fleet.cells)
    assert all(c["backend"] == "local" and c["address"].startswith("127.") for c in cells)

    # a manual wave: the rollout waits until an operator approves it through the API
    fleet.repo.replace(
        "cellops.yaml", "      - name: rest\n", "      - name: rest\n        approval: manual\n"
    )
    fleet.repo.commit("rest needs approval")
    v2 = fleet.release("web", "v2")
    wait_for("the wave to wait", lambda: fleet.events(kind="approval-needed"), timeout=60)
    latest = requests.get(f"{url}/api/v1/rollouts/latest", headers=viewer, timeout=30).json()
    assert latest["revision"] == v2 and "waiting for approval" in latest["waiting"]
    denied = requests.post(f"{url}/api/v1/rollout/approve", headers=viewer, timeout=30)
    assert denied.status_code == 403
    approved = requests.post(f"{url}/api/v1/rollout/approve", headers=operator, timeout=30)
    assert approved.status_code == 202, approved.text
    fleet.wait_rollout(v2, RolloutState.COMPLETED, timeout=90)


def test_https_with_a_certificate(fleet: Fleet, tmp_path: Path) -> None:
    ca = local_tls(tmp_path)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    fleet.start(extra=("--listen", "127.0.0.1:0", "--tls-cert", str(cert), "--tls-key", str(key)))
    url = str(fleet.record()["api"])
    assert url.startswith("https://127.0.0.1:")
    assert requests.get(f"{url}/healthz", verify=str(ca), timeout=30).json()["status"] == "ok"
    viewer = _token(fleet, "viewer")
    fleet_view = requests.get(f"{url}/api/v1/fleet", headers=viewer, verify=str(ca), timeout=30)
    assert fleet_view.status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url.replace("https", "http") + "/healthz", timeout=30)


def _one_line(fleet: Fleet, status: int, *args: str) -> str:
    result = fleet.cli("up", "--no-view", str(fleet.repo.path), "--state-dir", fleet.state, *args)
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stderr


def test_misuse_is_one_line(fleet: Fleet, tmp_path: Path) -> None:
    assert "port 99999 is out of range" in _one_line(fleet, 2, "--listen", "127.0.0.1:99999")
    assert "expected HOST:PORT" in _one_line(fleet, 2, "--listen", "8470")
    assert "give one of them" in _one_line(fleet, 2, "--listen", ":0", "--webhook", "0")
    assert "--tls-cert and --tls-key" in _one_line(fleet, 2, "--listen", ":0", "--tls-cert", "x")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        said = _one_line(fleet, 3, "--listen", f"127.0.0.1:{port}")
    assert f"the API cannot listen on 127.0.0.1:{port} (Address already in use)" in said
    assert "choose another --listen port" in said
