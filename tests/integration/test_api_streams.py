"""One token may hold at most `PER_TOKEN` of the API's event streams: past that a clear
429 with Retry-After, while another token still gets a stream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from cellops.api.stream import PER_TOKEN
from tests.apikit import Api, serve

pytestmark = pytest.mark.slow


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with serve(tmp_path) as served:
        yield served


def _open(api: Api, token: str) -> requests.Response:
    return requests.get(
        api.url + "/api/v1/events/stream", headers=api.headers(token), stream=True, timeout=60
    )


def test_one_token_cannot_hold_every_stream(api: Api) -> None:
    with ExitStack() as streams:
        for _ in range(PER_TOKEN):
            opened = streams.enter_context(_open(api, api.viewer))
            assert opened.status_code == 200
        refused = _open(api, api.viewer)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"].isdigit()
        assert f"{PER_TOKEN} event streams" in refused.json()["detail"]
        with _open(api, api.operator) as other:  # another token still gets one
            assert other.status_code == 200
    deadline = time.monotonic() + 60  # closed: the server sees it at its next poll
    while time.monotonic() < deadline:
        with _open(api, api.viewer) as again:
            if again.status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail("the viewer's streams were not given back after they were closed")


def test_a_streams_place_is_given_back_once() -> None:
    from cellops.api import stream

    token = (0, -1)
    with stream._lock:
        stream._open[0] += 1
        stream._by_token[token] = 1
    opened = stream._open[0]
    slot = stream._Slot(token)
    slot.release()
    slot.release()  # the stream's end and the response's background task: once
    assert stream._open[0] == opened - 1 and token not in stream._by_token
