"""The controller's API served by a real uvicorn on 127.0.0.1 over a real store: every
endpoint needs a token (but /healthz), reads need a viewer, writes an operator; the event
stream delivers what is written; errors say what is wrong."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cellops.api.auth import COOKIE
from cellops.controller.operator import PROMOTE, ROLLBACKS, approved_key
from cellops.store.records import RolloutState
from tests.apikit import BAD, NEW, Api, serve

pytestmark = pytest.mark.slow


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with serve(tmp_path) as served:
        yield served


READS = [
    "/api/v1/fleet",
    "/api/v1/cells",
    "/api/v1/cells/cell-0001",
    "/api/v1/services",
    "/api/v1/revisions",
    "/api/v1/rollouts",
    "/api/v1/rollouts/latest",
    "/api/v1/rollouts/1",
    "/api/v1/events",
    "/api/v1/whoami",
    "/api/v1/dora",
    "/api/v1/dora?since=7d",
    "/api/v1/openapi.json",
    "/api/v1/images",
]
# each write, with a body, and what an operator gets on the populated store (a running
# rollout waiting before its manual wave `rest`, whose cells run their last good state)
WRITES = [
    ("/api/v1/rollout/pause", None, 202),
    ("/api/v1/rollout/resume", None, 202),
    ("/api/v1/rollout/promote", None, 202),
    ("/api/v1/rollout/approve", {"wave": "rest"}, 202),
    ("/api/v1/rollout/retry", None, 409),  # the latest rollout runs: nothing to retry
    ("/api/v1/rollback", {"cell": "cell-0001"}, 409),  # it runs its last good state
    ("/api/v1/rollout/abort", None, 202),
]


def get(api: Api, path: str, token: str | None) -> requests.Response:
    return requests.get(api.url + path, headers=api.headers(token), timeout=30)


def post(api: Api, path: str, token: str | None, body: object = None) -> requests.Response:
    return requests.post(api.url + path, headers=api.headers(token), json=body, timeout=30)


def test_healthz_and_the_openapi_document(api: Api) -> None:
    assert get(api, "/healthz", None).json() == {"status": "ok"}
    assert get(api, "/api/v1/openapi.json", None).status_code == 401
    document = get(api, "/api/v1/openapi.json", api.viewer).json()
    paths = set(document["paths"])
    assert {*READS[:2], "/api/v1/events/stream", "/api/v1/rollout/approve"} <= paths


@pytest.mark.parametrize("path", READS)
def test_every_read_needs_a_token_and_a_viewer_may(api: Api, path: str) -> None:
    refused = get(api, path, None)
    assert refused.status_code == 401, refused.text
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "cellops token create" in refused.json()["detail"]
    assert get(api, path, "cellops_not-a-token").status_code == 401
    for token in (api.viewer, api.operator):
        answer = get(api, path, token)
        assert answer.status_code == 200, (path, answer.text)


@pytest.mark.parametrize(("path", "body", "status"), WRITES)
def test_every_write_needs_an_operator(api: Api, path: str, body: object, status: int) -> None:
    assert post(api, path, None, body).status_code == 401
    denied = post(api, path, api.viewer, body)
    assert denied.status_code == 403, denied.text
    assert "needs the operator role" in denied.json()["detail"]
    assert api.wakes == []
    done = post(api, path, api.operator, body)
    assert done.status_code == status, done.text
    assert bool(api.wakes) == (status == 202)


def test_writes_change_the_store_as_the_cli_does(api: Api) -> None:
    assert post(api, "/api/v1/rollout/pause", api.operator).status_code == 202
    assert api.store.active_rollout().paused  # type: ignore[union-attr]
    assert post(api, "/api/v1/rollout/promote", api.operator).status_code == 409  # paused
    assert post(api, "/api/v1/rollout/resume", api.operator).status_code == 202
    assert post(api, "/api/v1/rollout/promote", api.operator).status_code == 202
    assert api.store.setting(PROMOTE) == "1:1"
    unknown = post(api, "/api/v1/rollout/approve", api.operator, {"wave": "nope"})
    assert unknown.status_code == 404 and "has no wave 'nope'" in unknown.json()["detail"]
    assert post(api, "/api/v1/rollout/approve", api.operator, {}).status_code == 202
    assert api.store.setting(approved_key(1, "rest")) is not None
    assert "waiting for approval" not in get(api, "/api/v1/rollouts/latest", api.viewer).text
    assert post(api, "/api/v1/rollout/abort", api.operator).status_code == 202
    assert api.store.rollout(1).state is RolloutState.ABORTED  # type: ignore[union-attr]
    again = post(api, "/api/v1/rollout/abort", api.operator)
    assert again.status_code == 409 and again.json()["detail"] == "no rollout is running"
    kinds = [e.kind for e in api.store.events(limit=10)]
    assert kinds[-4:] == ["rollout-resume", "promote-requested", "wave-approved", "rollout-abort"]
    assert "token 'test-operator'" in api.store.events(limit=1)[0].message


def test_a_rollback_is_a_request_for_the_controller(api: Api) -> None:
    # cell-0000 was given NEW in the canary and proved good; make it unproven again
    api.store.set_applied("cell-0000", "svc-00", rev=BAD, hash_="x", depends_on=(), now=1.0)
    assert post(api, "/api/v1/rollback", api.operator, {}).status_code == 404  # names nothing
    missing = post(api, "/api/v1/rollback", api.operator, {"cell": "nope"})
    assert missing.status_code == 404 and "never applied" in missing.json()["detail"]
    done = post(api, "/api/v1/rollback", api.operator, {"service": "svc-00"})
    assert done.status_code == 202, done.text
    pending = json.loads(api.store.setting(ROLLBACKS) or "[]")
    assert [(p["cell"], p["service"]) for p in pending] == [(None, "svc-00")]


def test_reads_show_rejected_problems_and_why_the_rollout_waits(api: Api) -> None:
    revisions = get(api, "/api/v1/revisions", api.viewer).json()
    rejected = next(r for r in revisions if r["revision"] == BAD)
    assert (
        rejected["problems"][0]["text"] == "services/web.yaml:7: spec.replicas: expected an integer"
    )
    latest = get(api, "/api/v1/rollouts/latest", api.viewer).json()
    assert latest["revision"] == NEW and latest["waiting"].startswith(
        "wave rest: waiting for approval"
    )
    assert [w["status"] for w in latest["plan"]] == ["done", "current"]
    assert latest["created_at"].endswith("Z")
    cells = get(api, "/api/v1/cells?limit=2&offset=1", api.viewer).json()
    assert cells["total"] == 6 and [c["name"] for c in cells["cells"]] == ["cell-0001", "cell-0002"]
    assert get(api, "/api/v1/cells/nope", api.viewer).status_code == 404
    page = get(api, "/api/v1/events?limit=2", api.viewer).json()
    older = get(api, f"/api/v1/events?limit=10&before={page['next']}", api.viewer).json()
    ids = [e["id"] for e in page["events"] + older["events"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids) == 4
    assert older["next"] is None
    only = get(api, "/api/v1/events?kind=revision-rejected", api.viewer).json()["events"]
    assert [e["revision"] for e in only] == [BAD]
    bad = get(api, "/api/v1/events?since=yesterday", api.viewer)
    assert bad.status_code == 422 and "ISO-8601" in bad.json()["detail"]
    assert get(api, "/api/v1/events?limit=0", api.viewer).status_code == 422
    soon = get(api, "/api/v1/dora?since=soon", api.viewer)
    assert soon.status_code == 422 and "neither a duration" in soon.json()["detail"]


def test_a_revoked_token_is_refused_at_once(api: Api) -> None:
    assert get(api, "/api/v1/fleet", api.viewer).status_code == 200
    assert [t.name for t in api.store.revoke_token("test-viewer", time.time())] == ["test-viewer"]
    assert get(api, "/api/v1/fleet", api.viewer).status_code == 401


def test_the_event_stream_delivers_what_is_written(api: Api) -> None:
    received: list[dict[str, object]] = []
    connected = threading.Event()

    def listen() -> None:
        with requests.get(
            api.url + "/api/v1/events/stream",
            headers=api.headers(api.viewer),
            stream=True,
            timeout=60,
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines(decode_unicode=True):
                connected.set()
                if line.startswith("data: "):
                    received.append(json.loads(line[6:]))
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert connected.wait(30)
    api.store.add_event(time.time(), "drift", "cell-0003: restored", cell="cell-0003")
    thread.join(60)
    assert [(e["kind"], e["cell"]) for e in received] == [("drift", "cell-0003")]
    refused = requests.get(api.url + "/api/v1/events/stream", timeout=30)
    assert refused.status_code == 401


def test_a_stream_resumes_after_the_last_event_it_saw(api: Api) -> None:
    with requests.get(
        api.url + "/api/v1/events/stream",
        headers={**api.headers(api.viewer), "Last-Event-ID": "2"},
        stream=True,
        timeout=60,
    ) as response:
        ids = []
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            if len(ids) == 2:
                break
    assert ids == [3, 4]


def test_the_webhook_on_the_api_listener_keeps_its_protections(tmp_path: Path) -> None:
    import http.client

    from cellops.api.app import create_app
    from cellops.api.context import ApiContext
    from cellops.api.listener import Listener
    from cellops.source.webhook import MAX_BODY
    from cellops.store.sqlite import SqliteStore

    pushes: list[int] = []
    ctx = ApiContext(
        SqliteStore(tmp_path / "cellops.db"),
        wake=lambda: pushes.append(1),
        webhook_secret="s3cret",
        webhook=True,
    )
    listener = Listener(create_app(ctx), "127.0.0.1", 0)
    port = listener.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.putrequest("POST", "/webhook")
        connection.putheader("Content-Length", str(MAX_BODY + 1))
        connection.putheader("X-Hub-Signature-256", "sha256=" + "0" * 64)
        connection.endheaders()  # no body sent: refused before reading it
        response = connection.getresponse()
        assert response.status == 413
        connection.close()
        token = requests.post(
            f"http://127.0.0.1:{port}/webhook",
            headers={"X-Gitlab-Token": "s3cret", "X-Gitlab-Event": "Push Hook"},
            timeout=30,
        )
        assert token.status_code == 202 and pushes == [1]  # no bearer token: its own auth
    finally:
        listener.stop()
        ctx.close()


def test_image_verdicts_are_read_with_signer_digest_and_reason(api: Api, tmp_path: Path) -> None:
    """What the controller decided about each image, refused ones first, as `status`
    shows it: the API and the dashboard's revisions page."""
    from cellops.images.ledger import VerdictLedger
    from cellops.images.verdict import Verdict

    ledger = VerdictLedger(tmp_path / "cellops.db")
    digest = "sha256:" + "ab" * 32
    ledger.record(Verdict("reg.test/shop/web@" + digest, digest, "keys/cosign.pub", None, 1e9))
    ledger.record(Verdict("reg.test/shop/api:1", None, None, "no signature by keys/a.pub", 1e9))
    ledger.close()
    found = get(api, "/api/v1/images", api.viewer).json()["images"]
    assert [(i["image"], i["ok"], i["signer"], i["reason"]) for i in found] == [
        ("reg.test/shop/api:1", False, None, "no signature by keys/a.pub"),
        ("reg.test/shop/web@" + digest, True, "keys/cosign.pub", None),
    ]
    assert found[1]["digest"] == digest and found[1]["at"] == "2001-09-09T01:46:40.000Z"
    browser = requests.Session()
    browser.post(f"{api.url}/login", data={"token": api.viewer}, timeout=30)
    assert browser.cookies.get(COOKIE)
    page = browser.get(f"{api.url}/revisions", timeout=30).text
    assert "no signature by keys/a.pub" in page and "keys/cosign.pub" in page
