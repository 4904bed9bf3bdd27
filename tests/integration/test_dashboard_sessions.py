"""The dashboard's cookie is a server-side session, not the bearer token: random, kept
only hashed with its token, expiring, ended by signing out (from this site only) or by
revoking the token; Secure over HTTPS or when TLS ends at a proxy in front."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cellops.api.auth import COOKIE
from cellops.store.sqlite import SqliteStore
from cellops.store.tokens import Role, digest
from tests.apikit import Api, serve

pytestmark = pytest.mark.slow


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with serve(tmp_path) as served:
        yield served


def _sign_in(api: Api, token: str) -> tuple[requests.Session, str]:
    browser = requests.Session()
    answer = browser.post(
        api.url + "/login", data={"token": token}, allow_redirects=False, timeout=30
    )
    assert answer.status_code == 303, answer.text
    return browser, answer.headers["set-cookie"]


def _signed_in(browser: requests.Session, api: Api) -> bool:
    page = browser.get(api.url + "/revisions", allow_redirects=False, timeout=30)
    return page.status_code == 200


def test_the_cookie_is_a_session_not_the_token(api: Api, tmp_path: Path) -> None:
    browser, cookie = _sign_in(api, api.viewer)
    session = browser.cookies[COOKIE]
    assert api.viewer not in cookie and session != api.viewer
    assert "Secure" not in cookie  # plain HTTP on loopback, no proxy said
    assert _signed_in(browser, api)
    assert browser.get(api.url + "/api/v1/whoami", timeout=30).json()["name"] == "test-viewer"
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("cellops.db*"))
    assert session.encode() not in raw and digest(session).encode() in raw
    # a session id is no bearer token
    as_bearer = requests.get(api.url + "/api/v1/fleet", headers=api.headers(session), timeout=30)
    assert as_bearer.status_code == 401


def test_revoking_the_token_ends_its_sessions(api: Api) -> None:
    browser, _ = _sign_in(api, api.viewer)
    assert _signed_in(browser, api)
    api.store.revoke_token("test-viewer", time.time())
    assert not _signed_in(browser, api)
    refused = browser.get(api.url + "/api/v1/fleet", timeout=30)
    assert refused.status_code == 401 and "sign in again" in refused.json()["detail"]


def test_signing_out_ends_the_session_only_from_this_site(api: Api) -> None:
    browser, _ = _sign_in(api, api.operator)
    session = browser.cookies[COOKIE]
    forged = browser.post(
        api.url + "/logout", headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False
    )
    assert forged.status_code == 403 and "set-cookie" not in forged.headers
    assert _signed_in(browser, api)
    done = browser.post(api.url + "/logout", allow_redirects=False, timeout=30)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    replayed = requests.Session()
    replayed.cookies.set(COOKIE, session)  # the old cookie, kept by someone: ended
    assert not _signed_in(replayed, api)


def test_the_cookie_is_secure_behind_a_tls_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CELLOPS_SECURE_COOKIE", "1")
    with serve(tmp_path) as api:
        _, cookie = _sign_in(api, api.viewer)
    assert "Secure" in cookie


def test_a_session_expires_and_never_outlives_its_token(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cellops.db")
    token, _ = store.create_token("brief", Role.VIEWER, 100.0, expires=1000.0)
    session = store.create_session(token, 100.0, ttl=3600.0)
    assert store.session_token(session, 999.0) == token
    assert store.session_token(session, 1000.0) is None  # the token's expiry
    kept, _ = store.create_token("kept", Role.VIEWER, 100.0)
    session = store.create_session(kept, 100.0, ttl=60.0)
    assert store.session_token(session, 159.0) == kept
    assert store.session_token(session, 160.0) is None
    assert store.session_token(session + "x", 120.0) is None
