"""cosign signatures, found and checked as cosign stores them.

A signature manifest refers to the image (OCI 1.1 referrers API, artifactType
`application/vnd.dev.cosign.artifact.sig.v1+json`) or sits at the tag
`sha256-<hex>.sig` of the image's repository. Each of its layers of media type
`application/vnd.dev.cosign.simplesigning.v1+json` is a simple-signing payload, its
signature (base64 DER ECDSA over the payload's bytes) in the layer annotation
`dev.cosignproject.cosign/signature`. The payload must name the verified digest under
`critical.image.docker-manifest-digest`: a valid signature over another image is a replay.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from cellops.images.registry import NotFound, Registry

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PAYLOAD_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIGNATURE_KIND = "cosign container image signature"


class NotAKey(ValueError):
    """A key file that is not an ECDSA P-256 public key."""


def load_key(path: str, pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise NotAKey(
            f"{path}: not a PEM public key ({exc}): expected the cosign.pub that"
            " 'cosign generate-key-pair' writes"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise NotAKey(f"{path}: expected an ECDSA P-256 public key, as cosign makes")
    return key


@dataclass(frozen=True)
class Signature:
    payload: bytes
    signature: bytes


def signatures(registry: Registry, host: str, repository: str, digest: str) -> Iterator[Signature]:
    """Every cosign signature stored for `digest` (referrers first, then the .sig tag)."""
    for manifest in _signature_manifests(registry, host, repository, digest):
        layers = manifest.get("layers")
        for layer in layers if isinstance(layers, list) else []:
            if not isinstance(layer, dict) or layer.get("mediaType") != PAYLOAD_TYPE:
                continue
            annotations = layer.get("annotations")
            encoded = (
                annotations.get(SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
            )
            if not isinstance(encoded, str) or not isinstance(layer.get("digest"), str):
                continue
            try:
                signature = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                continue
            yield Signature(registry.blob(host, repository, layer["digest"]), signature)


def _signature_manifests(
    registry: Registry, host: str, repository: str, digest: str
) -> Iterator[dict[str, Any]]:
    referrers = registry.referrers(host, repository, digest)
    found = False
    for entry in referrers or []:
        if entry.get("artifactType") == SIG_ARTIFACT and isinstance(entry.get("digest"), str):
            found = True
            yield registry.manifest(host, repository, entry["digest"]).json()
    if found:
        return
    tag = digest.replace(":", "-") + ".sig"
    try:
        yield registry.manifest(host, repository, tag).json()
    except NotFound:
        return


def check(signature: Signature, digest: str, keys: Mapping[str, ec.EllipticCurvePublicKey]) -> str:
    """The path of the key that signed `signature` over `digest`; raises ValueError why not."""
    signer = next((path for path, key in keys.items() if _valid(key, signature)), None)
    if signer is None:
        raise ValueError("signed by none of the fleet's keys")
    try:
        payload = json.loads(signature.payload)
        critical = payload["critical"]
        named = critical["image"]["docker-manifest-digest"]
        kind = critical["type"]
    except (ValueError, TypeError, KeyError):
        raise ValueError("its payload is not a simple-signing payload") from None
    if kind != SIGNATURE_KIND:
        raise ValueError(f"its payload's type is {kind!r}: expected {SIGNATURE_KIND!r}")
    if named != digest:
        raise ValueError(f"its payload names {named}, not this image: a replayed signature")
    return signer


def _valid(key: ec.EllipticCurvePublicKey, signature: Signature) -> bool:
    try:
        key.verify(signature.signature, signature.payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
