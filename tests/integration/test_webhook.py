"""The push webhook, served by uvicorn on 127.0.0.1 (a port the OS picks), as the internet
would talk to it: signed and unsigned, small and huge, pushes and other events."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cellops.source.webhook import WebhookServer

SECRET = "s3cret-for-tests"
LIMIT = 64 << 10  # a small body limit, so that "too large" costs the test little


@dataclass
class Hook:
    port: int
    pushes: list[int]


@pytest.fixture
def hook() -> Iterator[Hook]:
    pushes: list[int] = []
    server = WebhookServer(SECRET, lambda: pushes.append(1), "127.0.0.1", 0, max_body=LIMIT)
    port = server.start()
    try:
        yield Hook(port, pushes)
    finally:
        server.stop()


def post(hook: Hook, body: bytes, headers: dict[str, str | bytes]) -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", hook.port, timeout=30)
    try:
        connection.putrequest("POST", "/webhook")
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def github(body: bytes, event: str | None = "push", secret: str = SECRET) -> dict[str, str | bytes]:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers: dict[str, str | bytes] = {"X-Hub-Signature-256": signature}
    if event is not None:
        headers["X-GitHub-Event"] = event
    return headers


BODY = json.dumps({"ref": "refs/heads/main", "after": "0" * 40}).encode()


def test_a_signed_github_push_wakes_the_controller(hook: Hook) -> None:
    assert post(hook, BODY, github(BODY)) == (202, {"status": "accepted"})
    assert hook.pushes == [1]


def test_a_gitlab_push_or_tag_push_wakes_the_controller(hook: Hook) -> None:
    for event in ("Push Hook", "Tag Push Hook"):
        headers = {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": event}
        assert post(hook, BODY, headers)[0] == 202
    assert hook.pushes == [1, 1]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (github(BODY, "ping"), 200),
        (github(BODY, "issues"), 202),
        (github(BODY, "pull_request"), 202),
        ({"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Merge Request Hook"}, 202),
        ({"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Pipeline Hook"}, 202),
        (github(BODY, None), 400),
        ({"X-Gitlab-Token": SECRET}, 400),
    ],
    ids=["ping", "issues", "pull-request", "merge-request", "pipeline", "no-event", "no-gl-event"],
)
def test_other_events_are_answered_without_waking(
    hook: Hook, headers: dict[str, str | bytes], status: int
) -> None:
    assert post(hook, BODY, headers)[0] == status
    assert hook.pushes == []


@pytest.mark.parametrize(
    "headers",
    [
        github(BODY, secret="not-the-secret"),
        {**github(BODY), "X-Hub-Signature-256": "sha256=zz"},
        {**github(BODY), "X-Hub-Signature-256": "sha256=é".encode()},
        {"X-Gitlab-Token": SECRET + "x", "X-Gitlab-Event": "Push Hook"},
        {"X-Gitlab-Token": "sécret".encode(), "X-Gitlab-Event": "Push Hook"},  # a 500 before
        {"X-Gitlab-Token": b"\xff\xfe", "X-Gitlab-Event": "Push Hook"},
        {"X-GitHub-Event": "push"},
    ],
    ids=["wrong-secret", "not-hex", "non-ascii-sig", "wrong-token", "non-ascii", "latin1", "none"],
)
def test_a_bad_or_missing_signature_is_401_and_wakes_nothing(
    hook: Hook, headers: dict[str, str | bytes]
) -> None:
    assert post(hook, BODY, headers)[0] == 401
    assert hook.pushes == []


def test_without_a_secret_every_request_is_refused() -> None:
    pushes: list[int] = []
    server = WebhookServer(None, lambda: pushes.append(1), "127.0.0.1", 0)
    port = server.start()
    try:
        status, answer = post(Hook(port, pushes), BODY, github(BODY, secret=""))
        assert status == 401 and "no webhook secret" in answer["error"]
    finally:
        server.stop()
    assert pushes == []


def test_without_a_secret_a_signed_body_is_refused_before_it_is_read() -> None:
    """4 MiB announced with a signature, nothing sent: no secret to check it against, so
    the answer comes from the headers alone (it would wait for the body if it read it)."""
    server = WebhookServer(None, lambda: None, "127.0.0.1", 0)
    port = server.start()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", "/webhook")
        for name, value in {"Content-Length": str(4 << 20), **github(b"")}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 401 and b"no webhook secret" in response.read()
    finally:
        connection.close()
        server.stop()


def test_a_body_declared_too_large_is_refused_before_it_is_sent(hook: Hook) -> None:
    """500 MB announced, nothing sent: the answer comes at once, from the headers alone."""
    connection = http.client.HTTPConnection("127.0.0.1", hook.port, timeout=30)
    try:
        connection.putrequest("POST", "/webhook")
        for name, value in {"Content-Length": str(500 << 20), **github(b"")}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
    finally:
        connection.close()
    assert hook.pushes == []


def test_a_chunked_body_is_read_only_up_to_the_limit(hook: Hook) -> None:
    """No length announced: the server stops reading past the limit and answers 413,
    although the client would go on sending for ever."""
    with socket.create_connection(("127.0.0.1", hook.port), timeout=30) as client:
        client.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=" + b"0" * 64 + b"\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (8192, b"x" * 8192)
        answer = b""
        try:
            for _ in range(LIMIT // 8192 * 4):  # four times the limit, if it kept reading
                client.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: exactly what should happen
        try:
            while not answer.endswith(b"}") and (data := client.recv(4096)):
                answer += data
        except ConnectionResetError:
            pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert hook.pushes == []


def test_a_body_within_the_limit_is_verified_and_accepted(hook: Hook) -> None:
    body = json.dumps({"ref": "refs/heads/main", "commits": ["x" * 100] * 600}).encode()
    assert LIMIT // 2 < len(body) < LIMIT
    assert post(hook, body, github(body))[0] == 202
    too_big = body + b" " * LIMIT
    assert post(hook, too_big, github(too_big))[0] == 413
    assert hook.pushes == [1]
