"""What a plain docker-registry 2.8 does not do, put in front of one by a small proxy: the
OCI 1.1 referrers API (a signature found without its `.sig` tag) and bearer-token
challenges (a token fetched from the realm with the Docker credentials, then used)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import requests

from cellops.images.registry import Registry
from cellops.images.verify import ImageVerifier
from cellops.spec.image_policy import ImagePolicy, SignatureAuthority
from tests import imagekit
from tests.httpkit import serving
from tests.imagekit import PASSWORD, USER, LocalRegistry, new_key, public_pem

registry = imagekit.registry  # the fixture
TOKEN = "token-for-tests"
INDEX = "application/vnd.oci.image.index.v1+json"
SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"


@contextmanager
def bearer_proxy(
    upstream: LocalRegistry, referrers: dict[str, list[dict[str, Any]]]
) -> Iterator[tuple[str, list[str]]]:
    """A registry at 127.0.0.1:<port> that wants a bearer token (from its /token, for the
    tests' user) and serves `referrers` by digest; the rest comes from `upstream`. Yields
    its host and the paths it was asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            if self.path.startswith("/token"):
                return self._token()
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                realm = f"http://{self.headers['Host']}/token"
                challenge = f'Bearer realm="{realm}",service="tests"'
                return self._send(401, "application/json", b"{}", {"WWW-Authenticate": challenge})
            if "/referrers/" in self.path:
                found = referrers.get(self.path.rsplit("/", 1)[1], [])
                body = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": found})
                return self._send(200, INDEX, body.encode())
            accept = self.headers.get("Accept", "")
            answer = requests.get(
                upstream.url(self.path), headers={"Accept": accept}, auth=(USER, PASSWORD)
            )
            return self._send(answer.status_code, answer.headers["Content-Type"], answer.content)

        def _token(self) -> None:
            basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {basic}":
                return self._send(401, "application/json", b"{}")
            return self._send(200, "application/json", json.dumps({"token": TOKEN}).encode())

        def _send(
            self, status: int, kind: str, body: bytes, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as port:
        yield f"127.0.0.1:{port}", asked


def test_a_signature_found_through_referrers_behind_a_bearer_token(
    registry: LocalRegistry,
) -> None:
    key = new_key()
    digest = registry.push_image("shop/web", "1.0")
    signature = registry.sign("shop/web", digest, key, tag="not-the-sig-tag")
    entry = {"mediaType": imagekit.OCI_MANIFEST, "digest": signature, "artifactType": SIG_ARTIFACT}
    with bearer_proxy(registry, {digest: [entry]}) as (host, asked):
        credentials = registry.credentials
        credentials.auths[host] = credentials.auths.pop(registry.host)
        verdict = ImageVerifier(Registry(credentials)).verify(
            f"{host}/shop/web@{digest}",
            ImagePolicy(signatures=[SignatureAuthority(key="keys/cosign.pub")]),
            {"keys/cosign.pub": public_pem(key)}.__getitem__,
        )
    assert verdict.ok, verdict.reason
    scope = "repository%3Ashop%2Fweb%3Apull"  # asked for once, then reused
    assert [p for p in asked if p.startswith("/token")] == [f"/token?service=tests&scope={scope}"]
    assert f"/v2/shop/web/referrers/{digest}" in asked
    assert not any(p.endswith(".sig") for p in asked)
