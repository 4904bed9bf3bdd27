"""Keyless signatures: Sigstore bundles attached to an image, verified offline.

cosign 3 (and cosign 2 with `--new-bundle-format`) stores a signature or an attestation as
an OCI 1.1 referrer of the image whose artifact type is a Sigstore bundle: the referrers API
lists it, or, on a registry without that API, the referrers tag `sha256-<hex>` (an OCI
index). The bundle holds a DSSE envelope around an in-toto statement about the image's
digest (predicate `https://sigstore.dev/cosign/sign/v1` for a signature, SLSA provenance for
an attestation), the signer's short-lived certificate, and the transparency log's entry.

`sigstore` verifies it against the fleet's trusted root (Sigstore's `trusted_root.json`, a
file in the fleet repo) with no network: the certificate chains to the root's CA at the
log's integrated time, its embedded SCT is signed by a CT log of the root, the entry's
inclusion proof, checkpoint and inclusion promise are signed by a log of the root, and the
certificate names the expected OIDC issuer and subject. The statement must then name the
verified digest: a valid bundle over another image is a replay.

cosign 2's older keyless layout (a `.sig` tag whose layer carries the certificate and a
`dev.sigstore.cosign/bundle` annotation) holds an inclusion promise but no inclusion proof,
which sigstore-python requires: such signatures are not found here (re-sign with cosign 3).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.x509 import (
    Certificate,
    ExtensionNotFound,
    RFC822Name,
    SubjectAlternativeName,
    UniformResourceIdentifier,
)
from sigstore.errors import Error as SigstoreError
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity, OIDCIssuer, VerificationPolicy
from sigstore_models.trustroot import v1 as trustroot_v1

from cellops.images.registry import NotFound, Registry

BUNDLE_TYPES = (
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
)
INTOTO = "application/vnd.in-toto+json"
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"


class NotARoot(ValueError):
    """A trusted root file that sigstore cannot use."""


@functools.lru_cache(maxsize=16)
def load_root(path: str, data: bytes) -> Verifier:
    """A verifier for the trusted root in `data` (the file at `path` of the fleet repo);
    kept for the same bytes, so a wave's re-check with cached verdicts parses no root."""
    try:
        root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(data))
        root.get_fulcio_certs()
        return Verifier(trusted_root=root)
    except (ValueError, TypeError, IndexError, SigstoreError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NotARoot(
            f"{path}: not a Sigstore trusted root ({why}): expected the trusted_root.json"
            " of your Sigstore instance ('cosign trusted-root create', or Sigstore's TUF"
            " repository for the public instance)"
        ) from None


class SubjectPattern:
    """A certificate from `issuer` whose identity (a SAN) matches `pattern` in full."""

    def __init__(self, pattern: str, issuer: str) -> None:
        self._pattern = re.compile(pattern)
        self._issuer = OIDCIssuer(issuer)

    def verify(self, cert: Certificate) -> None:
        self._issuer.verify(cert)
        names = identities(cert)
        if not any(self._pattern.fullmatch(name) for name in names):
            raise SigstoreError(
                f"the certificate's identities {sorted(names)} do not match"
                f" {self._pattern.pattern!r}"
            )


@dataclass(frozen=True)
class Authority:
    """A keyless identity of the policy, with the verifier of its trusted root."""

    issuer: str
    subject: str | None
    pattern: str | None
    verifier: Verifier

    @property
    def policy(self) -> VerificationPolicy:
        if self.subject is not None:
            return Identity(identity=self.subject, issuer=self.issuer)
        assert self.pattern is not None
        return SubjectPattern(self.pattern, self.issuer)


def identities(cert: Certificate) -> set[str]:
    try:
        sans = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
    except ExtensionNotFound:
        return set()
    return set(sans.get_values_for_type(RFC822Name)) | set(
        sans.get_values_for_type(UniformResourceIdentifier)
    )


def bundles(registry: Registry, host: str, repository: str, digest: str) -> Iterator[bytes]:
    """Every Sigstore bundle attached to `digest` (referrers API, else the referrers tag)."""
    for entry in _referrers(registry, host, repository, digest):
        if entry.get("artifactType") not in BUNDLE_TYPES or not isinstance(
            entry.get("digest"), str
        ):
            continue
        manifest = registry.manifest(host, repository, entry["digest"]).json()
        layers = manifest.get("layers")
        for layer in layers if isinstance(layers, list) else []:
            if isinstance(layer, dict) and layer.get("mediaType") in BUNDLE_TYPES:
                if isinstance(layer.get("digest"), str):
                    yield registry.blob(host, repository, layer["digest"])


def _referrers(registry: Registry, host: str, repository: str, digest: str) -> list[dict[str, Any]]:
    found = registry.referrers(host, repository, digest)
    if found is not None:
        return found
    try:
        index = registry.manifest(host, repository, digest.replace(":", "-")).json()
    except NotFound:
        return []
    manifests = index.get("manifests")
    return [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []


@dataclass(frozen=True)
class Statement:
    """A verified in-toto statement about the image, and who signed it."""

    signer: str
    predicate_type: str
    predicate: Any


def verify(data: bytes, digest: str, authorities: list[Authority]) -> Statement:
    """The statement of the bundle `data` about `digest`, signed by one of `authorities`;
    raises ValueError why not."""
    try:
        bundle = Bundle.from_json(data)
    except (SigstoreError, ValueError) as exc:
        raise ValueError(f"not a Sigstore bundle ({str(exc).splitlines()[0]})") from None
    reasons = []
    for authority in authorities:
        try:
            kind, payload = authority.verifier.verify_dsse(bundle, authority.policy)
        except (SigstoreError, ValueError, TypeError, ExtensionNotFound) as exc:
            reasons.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            continue
        names = sorted(identities(bundle.signing_certificate))
        return _statement(kind, payload, digest, f"{', '.join(names)} ({authority.issuer})")
    raise ValueError("; ".join(reasons))


def _statement(kind: str, payload: bytes, digest: str, signer: str) -> Statement:
    if kind != INTOTO:
        raise ValueError(f"its payload is {kind!r}: expected an in-toto statement ({INTOTO})")
    try:
        statement = json.loads(payload)
        subjects = [s["digest"].get("sha256") for s in statement["subject"]]
        predicate_type = statement["predicateType"]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ValueError("its payload is not an in-toto statement") from None
    if digest.removeprefix("sha256:") not in subjects:
        named = ", ".join(f"sha256:{s}" for s in subjects if isinstance(s, str)) or "no digest"
        raise ValueError(f"its statement names {named}, not this image: a replayed signature")
    return Statement(signer, str(predicate_type), statement.get("predicate"))
