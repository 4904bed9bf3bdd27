"""Image verdicts against a real registry (Debian's docker-registry, htpasswd auth) with
images and cosign signatures made by the tests: what passes, what is refused and why, and
what a cached verdict costs (no registry request)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from cellops.images.registry import Registry
from cellops.images.verify import ImageVerifier, Verdict
from cellops.spec.image_policy import ImagePolicy, SignatureAuthority
from tests import imagekit
from tests.httpkit import serving
from tests.imagekit import (
    LocalRegistry,
    free_port,
    new_key,
    public_pem,
    running_registry,
    simple_signing,
)

registry, key = imagekit.registry, imagekit.key  # the fixtures
KEY = "keys/cosign.pub"


def policy(**fields: object) -> ImagePolicy:
    return ImagePolicy(signatures=[SignatureAuthority(key=KEY)], **fields)  # type: ignore[arg-type]


def verify(
    registry: LocalRegistry, image: str, pem: bytes, verifier: ImageVerifier | None = None
) -> Verdict:
    verifier = verifier or ImageVerifier(Registry(registry.credentials))
    return verifier.verify(image, policy(), {KEY: pem}.__getitem__)


def test_a_signed_image_passes_and_a_second_look_costs_no_request(
    registry: LocalRegistry, key: ec.EllipticCurvePrivateKey
) -> None:
    digest = registry.push_image("shop/web", "1.0")
    registry.sign("shop/web", digest, key)
    client = Registry(registry.credentials)
    verifier = ImageVerifier(client)
    image = f"{registry.host}/shop/web@{digest}"
    verdict = verify(registry, image, public_pem(key), verifier)
    assert verdict.ok and verdict.signer == KEY and verdict.digest == digest
    cold = client.requests
    assert cold > 0
    assert verify(registry, image, public_pem(key), verifier).ok
    assert client.requests == cold


def test_a_key_changed_in_the_fleet_is_checked_again(
    registry: LocalRegistry, key: ec.EllipticCurvePrivateKey
) -> None:
    digest = registry.push_image("shop/web", "1.0")
    registry.sign("shop/web", digest, key)
    verifier = ImageVerifier(Registry(registry.credentials))
    image = f"{registry.host}/shop/web@{digest}"
    assert verify(registry, image, public_pem(key), verifier).ok
    verdict = verify(registry, image, public_pem(new_key()), verifier)
    assert verdict.reason == "no valid cosign signature: signed by none of the fleet's keys"


def test_a_signature_deleted_since_is_seen_once_the_verdict_is_old(
    registry: LocalRegistry, key: ec.EllipticCurvePrivateKey
) -> None:
    digest = registry.push_image("shop/web", "1.0")
    signature = registry.sign("shop/web", digest, key)
    now = [1000.0]
    verifier = ImageVerifier(Registry(registry.credentials), clock=lambda: now[0])
    image = f"{registry.host}/shop/web@{digest}"
    assert verify(registry, image, public_pem(key), verifier).ok
    registry.delete_manifest("shop/web", signature)
    now[0] += verifier.recheck_after
    verdict = verify(registry, image, public_pem(key), verifier)
    assert verdict.reason is not None and "has no cosign signature" in verdict.reason


def test_a_tag_is_resolved_once(registry: LocalRegistry, key: ec.EllipticCurvePrivateKey) -> None:
    first = registry.push_image("shop/web", "stable", note="one")
    registry.sign("shop/web", first, key)
    verifier = ImageVerifier(Registry(registry.credentials))
    image = f"{registry.host}/shop/web:stable"
    tags = policy(require_digest=False, resolve_tags=True)
    read = {KEY: public_pem(key)}.__getitem__
    assert verifier.verify(image, tags, read).digest == first
    moved = registry.push_image("shop/web", "stable", note="two")  # unsigned, same tag
    assert moved != first
    verdict = verifier.verify(image, tags, read)
    assert verdict.ok and verdict.digest == first
    assert verifier.resolved == {image: first}


# -- the bad-input corpus: each refused with a reason ---------------------------------------
def test_unsigned(registry: LocalRegistry, key: ec.EllipticCurvePrivateKey) -> None:
    digest = registry.push_image("shop/web", "1.0")
    verdict = verify(registry, f"{registry.host}/shop/web@{digest}", public_pem(key))
    assert verdict.reason == (
        f"{digest} has no cosign signature (referrers, or the tag sha256-….sig)"
    )


def test_signed_by_another_key(registry: LocalRegistry, key: ec.EllipticCurvePrivateKey) -> None:
    digest = registry.push_image("shop/web", "1.0")
    registry.sign("shop/web", digest, new_key())
    verdict = verify(registry, f"{registry.host}/shop/web@{digest}", public_pem(key))
    assert verdict.reason == "no valid cosign signature: signed by none of the fleet's keys"


def test_a_signature_over_another_digest_is_a_replay(
    registry: LocalRegistry, key: ec.EllipticCurvePrivateKey
) -> None:
    other = registry.push_image("shop/web", "0.9", note="other")
    digest = registry.push_image("shop/web", "1.0")
    replayed = simple_signing(registry.host, "shop/web", other)
    registry.sign("shop/web", digest, key, payload=replayed)
    verdict = verify(registry, f"{registry.host}/shop/web@{digest}", public_pem(key))
    assert verdict.reason == (
        f"no valid cosign signature: its payload names {other}, not this image:"
        " a replayed signature"
    )


def test_a_tampered_payload(registry: LocalRegistry, key: ec.EllipticCurvePrivateKey) -> None:
    digest = registry.push_image("shop/web", "1.0")
    signed = simple_signing(registry.host, "shop/web", digest)
    tampered = json.loads(signed)
    tampered["optional"] = {"note": "changed after signing"}
    registry.sign("shop/web", digest, key, payload=json.dumps(tampered).encode(), signed=signed)
    verdict = verify(registry, f"{registry.host}/shop/web@{digest}", public_pem(key))
    assert verdict.reason == "no valid cosign signature: signed by none of the fleet's keys"


def test_a_payload_layer_of_another_media_type_is_no_signature(
    registry: LocalRegistry, key: ec.EllipticCurvePrivateKey
) -> None:
    digest = registry.push_image("shop/web", "1.0")
    registry.sign("shop/web", digest, key, layer_type="application/octet-stream")
    verdict = verify(registry, f"{registry.host}/shop/web@{digest}", public_pem(key))
    assert verdict.reason is not None and "has no cosign signature" in verdict.reason


def test_an_oversized_payload(registry: LocalRegistry, key: ec.EllipticCurvePrivateKey) -> None:
    digest = registry.push_image("shop/web", "1.0")
    payload = simple_signing(registry.host, "shop/web", digest) + b" " * 2_000_000
    registry.sign("shop/web", digest, key, payload=payload)
    verdict = verify(registry, f"{registry.host}/shop/web@{digest}", public_pem(key))
    assert verdict.reason is not None
    assert "bytes: over the limit of 1048576" in verdict.reason


class _Canned(BaseHTTPRequestHandler):
    """A registry that answers every GET with one canned manifest response."""

    content_type = "text/html"
    body = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def canned(content_type: str, body: bytes) -> Iterator[str]:
    handler = type("Handler", (_Canned,), {"content_type": content_type, "body": body})
    with serving(handler) as port:
        yield f"127.0.0.1:{port}"


def test_a_manifest_of_another_media_type() -> None:
    body = b'{"schemaVersion": 2}'
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    with canned("text/html", body) as host:
        verdict = verify_at(host, digest)
    assert verdict.reason == (
        f"{host}/shop/web:{digest} has media type 'text/html': expected an OCI or Docker"
        " image manifest"
    )


def test_an_oversized_manifest() -> None:
    body = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    with canned("application/vnd.oci.image.manifest.v1+json", body) as host:
        verdict = verify_at(host, digest)
    assert verdict.reason == (
        f"manifest shop/web:{digest} is {len(body)} bytes: over the limit of 4194304"
    )


def verify_at(host: str, digest: str) -> Verdict:
    return ImageVerifier(Registry()).verify(
        f"{host}/shop/web@{digest}", policy(), {KEY: public_pem(new_key())}.__getitem__
    )


def test_a_key_file_that_is_not_a_key(
    registry: LocalRegistry, key: ec.EllipticCurvePrivateKey
) -> None:
    digest = registry.push_image("shop/web", "1.0")
    registry.sign("shop/web", digest, key)
    verdict = verify(registry, f"{registry.host}/shop/web@{digest}", b"not a key\n")
    assert verdict.reason is not None
    assert verdict.reason.startswith(f"{KEY}: not a PEM public key")


def test_the_registry_down_fails_closed(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    digest = "sha256:" + "ab" * 32
    verdict = ImageVerifier(Registry()).verify(
        f"{host}/shop/web@{digest}", policy(), {KEY: public_pem(new_key())}.__getitem__
    )
    assert not verdict.ok and verdict.transient
    assert verdict.reason is not None and verdict.reason.startswith("cannot reach")


def test_wrong_credentials_are_refused(
    registry: LocalRegistry, key: ec.EllipticCurvePrivateKey
) -> None:
    digest = registry.push_image("shop/web", "1.0")
    registry.sign("shop/web", digest, key)
    verdict = ImageVerifier(Registry()).verify(
        f"{registry.host}/shop/web@{digest}", policy(), {KEY: public_pem(key)}.__getitem__
    )
    assert verdict.reason is not None and "answered 401" in verdict.reason


def test_a_registry_over_tls_with_a_test_ca(tmp_path: Path) -> None:
    key = new_key()
    with running_registry(tmp_path / "tls", tls=True) as secure:
        assert secure.ca is not None
        digest = secure.push_image("shop/web", "1.0")
        secure.sign("shop/web", digest, key)
        image = f"{secure.host}/shop/web@{digest}"
        read = {KEY: public_pem(key)}.__getitem__
        trusting = ImageVerifier(Registry(secure.credentials, ca_bundle=secure.ca))
        assert trusting.verify(image, policy(), read).ok
        untrusted = ImageVerifier(Registry(secure.credentials)).verify(image, policy(), read)
    assert untrusted.reason is not None
    assert untrusted.reason.startswith(f"{secure.host}: its TLS certificate is not trusted")


def test_a_hostile_signature_manifest_is_no_signature() -> None:
    """Shapes a registry should refuse (annotations as a list, a layer that is a string):
    skipped, never a crash. The canned registry answers the image and its .sig tag alike."""
    hostile = {
        "schemaVersion": 2,
        "mediaType": imagekit.OCI_MANIFEST,
        "layers": ["oops", {"mediaType": imagekit.PAYLOAD_TYPE, "annotations": ["x"]}],
    }
    body = json.dumps(hostile).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    with canned(imagekit.OCI_MANIFEST, body) as host:
        verdict = verify_at(host, digest)
    assert (
        verdict.reason == f"{digest} has no cosign signature (referrers, or the tag sha256-….sig)"
    )
