"""Keyless image signatures against a real registry (Debian's docker-registry) and a
Sigstore instance of the tests' own (tests/sigstorekit.py): Sigstore bundles attached as
cosign 3 attaches them, verified offline against the trusted root kept in the fleet repo.
What passes, what is refused and why, and SLSA provenance from a named builder. (Where a
verdict stops a revision or a wave: test_image_keyless_gate.py.)"""

from __future__ import annotations

import datetime

import pytest

from cellops.images.registry import Registry
from cellops.images.verify import ImageVerifier, Verdict
from cellops.spec.image_policy import ImagePolicy, Provenance, SignatureAuthority
from tests import imagekit
from tests.imagekit import LocalRegistry
from tests.integration.test_image_registry_protocols import bearer_proxy
from tests.sigstorekit import (
    BUNDLE_TYPE,
    OCI_MANIFEST,
    TestSigstore,
    attach,
    provenance,
    statement,
)

pytestmark = pytest.mark.slow  # a registry per test (the fast tier: tests/unit/test_keyless.py)
registry = imagekit.registry  # the fixture
ROOT = "keys/trusted_root.json"
ISSUER = "https://issuer.cellops.test"
SUBJECT = "https://ci.cellops.test/shop/web/.ci/release.yml@refs/heads/main"
BUILDER = "https://ci.cellops.test/builders/release@v1"
NO_BUNDLE = "has no Sigstore bundle (referrers, or the referrers tag sha256-…)"


@pytest.fixture
def sigstore() -> TestSigstore:
    return TestSigstore()


def policy(
    *, subject: str | None = SUBJECT, pattern: str | None = None, builder: str | None = None
) -> ImagePolicy:
    identity = SignatureAuthority(
        issuer=ISSUER, subject=subject, subject_pattern=pattern, trusted_root=ROOT
    )
    made = Provenance(builder=builder) if builder is not None else None
    return ImagePolicy(signatures=[identity], provenance=made)


def verify(
    registry: LocalRegistry,
    digest: str,
    root: bytes,
    rules: ImagePolicy | None = None,
    verifier: ImageVerifier | None = None,
) -> Verdict:
    verifier = verifier or ImageVerifier(Registry(registry.credentials))
    image = f"{registry.host}/shop/web@{digest}"
    return verifier.verify(image, rules or policy(), {ROOT: root}.__getitem__)


def signed(
    registry: LocalRegistry,
    sigstore: TestSigstore,
    *,
    issuer: str = ISSUER,
    logged_at: datetime.datetime | None = None,
    tamper: bool = False,
) -> str:
    digest = registry.push_image("shop/web", "1.0")
    made = sigstore.bundle(statement(digest), SUBJECT, issuer, logged_at=logged_at, tamper=tamper)
    attach(registry, "shop/web", digest, made)
    return digest


def test_a_keyless_signature_passes_and_a_second_look_costs_no_request(
    registry: LocalRegistry, sigstore: TestSigstore
) -> None:
    digest = signed(registry, sigstore)
    client = Registry(registry.credentials)
    verifier = ImageVerifier(client)
    verdict = verify(registry, digest, sigstore.trusted_root(), verifier=verifier)
    assert verdict.ok, verdict.reason
    assert verdict.signer == f"{SUBJECT} ({ISSUER})" and verdict.digest == digest
    cold = client.requests
    assert verify(registry, digest, sigstore.trusted_root(), verifier=verifier).ok
    assert client.requests == cold


def test_a_subject_pattern_matches_the_whole_identity(
    registry: LocalRegistry, sigstore: TestSigstore
) -> None:
    digest = signed(registry, sigstore)
    root = sigstore.trusted_root()
    matching = policy(subject=None, pattern=r"https://ci\.cellops\.test/shop/[a-z]+/.*")
    assert verify(registry, digest, root, matching).ok
    prefix_only = policy(subject=None, pattern=r"https://ci\.cellops\.test/shop")
    verdict = verify(registry, digest, root, prefix_only)
    assert verdict.reason == (
        f"no valid signature: the certificate's identities ['{SUBJECT}'] do not match"
        " 'https://ci\\\\.cellops\\\\.test/shop'"
    )


def test_a_root_changed_in_the_fleet_is_checked_again(
    registry: LocalRegistry, sigstore: TestSigstore
) -> None:
    digest = signed(registry, sigstore)
    verifier = ImageVerifier(Registry(registry.credentials))
    assert verify(registry, digest, sigstore.trusted_root(), verifier=verifier).ok
    verdict = verify(registry, digest, TestSigstore().trusted_root(), verifier=verifier)
    assert verdict.reason is not None
    assert "failed to build timestamp certificate chain" in verdict.reason


# -- the bad-input corpus: each refused with a reason ---------------------------------------
def test_a_wrong_subject(registry: LocalRegistry, sigstore: TestSigstore) -> None:
    digest = registry.push_image("shop/web", "1.0")
    intruder = "https://ci.cellops.test/intruder/.ci/release.yml@refs/heads/main"
    attach(registry, "shop/web", digest, sigstore.bundle(statement(digest), intruder))
    verdict = verify(registry, digest, sigstore.trusted_root())
    assert verdict.reason == (
        f"no valid signature: Certificate's SANs do not match {SUBJECT}; actual SANs:"
        f" {{'{intruder}'}}"
    )


def test_a_wrong_issuer(registry: LocalRegistry, sigstore: TestSigstore) -> None:
    digest = signed(registry, sigstore, issuer="https://other-issuer.test")
    verdict = verify(registry, digest, sigstore.trusted_root())
    assert verdict.reason == (
        "no valid signature: Certificate's OIDCIssuer does not match (got"
        f" 'https://other-issuer.test', expected '{ISSUER}')"
    )


def test_a_certificate_expired_when_logged(registry: LocalRegistry, sigstore: TestSigstore) -> None:
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    digest = signed(registry, sigstore, logged_at=later)
    verdict = verify(registry, digest, sigstore.trusted_root())
    assert verdict.reason == (
        "no valid signature: failed to build timestamp certificate chain: certificate has expired"
    )


def test_a_bundle_over_another_digest_is_a_replay(
    registry: LocalRegistry, sigstore: TestSigstore
) -> None:
    other = registry.push_image("shop/web", "0.9", note="other")
    digest = registry.push_image("shop/web", "1.0")
    attach(registry, "shop/web", digest, sigstore.bundle(statement(other), SUBJECT))
    verdict = verify(registry, digest, sigstore.trusted_root())
    assert verdict.reason == (
        f"no valid signature: its statement names {other}, not this image: a replayed signature"
    )


def test_a_tampered_bundle(registry: LocalRegistry, sigstore: TestSigstore) -> None:
    digest = signed(registry, sigstore, tamper=True)
    verdict = verify(registry, digest, sigstore.trusted_root())
    assert verdict.reason == "no valid signature: DSSE: invalid signature"


def test_a_bundle_of_another_sigstore_instance(
    registry: LocalRegistry, sigstore: TestSigstore
) -> None:
    digest = signed(registry, TestSigstore())
    verdict = verify(registry, digest, sigstore.trusted_root())
    assert verdict.reason == (
        "no valid signature: failed to build timestamp certificate chain: unable to get"
        " local issuer certificate"
    )


def test_a_trusted_root_that_is_not_json(registry: LocalRegistry, sigstore: TestSigstore) -> None:
    digest = signed(registry, sigstore)
    verdict = verify(registry, digest, b"not json at all\n")
    assert verdict.reason is not None
    assert verdict.reason.startswith(f"{ROOT}: not a Sigstore trusted root (")
    assert verdict.digest is None  # refused before the registry is asked


def test_a_missing_bundle(registry: LocalRegistry, sigstore: TestSigstore) -> None:
    digest = registry.push_image("shop/web", "1.0")
    verdict = verify(registry, digest, sigstore.trusted_root())
    assert verdict.reason == f"{digest} {NO_BUNDLE}"


def test_a_bundle_that_is_not_a_bundle(registry: LocalRegistry, sigstore: TestSigstore) -> None:
    digest = registry.push_image("shop/web", "1.0")
    attach(registry, "shop/web", digest, b'{"mediaType": "text/plain"}')
    verdict = verify(registry, digest, sigstore.trusted_root())
    assert verdict.reason is not None
    assert verdict.reason.startswith("no valid signature: not a Sigstore bundle (")


# -- SLSA provenance from a named builder ----------------------------------------------------
def test_provenance_from_the_named_builder_passes_and_from_another_fails(
    registry: LocalRegistry, sigstore: TestSigstore
) -> None:
    digest = signed(registry, sigstore)
    root = sigstore.trusted_root()
    verdict = verify(registry, digest, root, policy(builder=BUILDER))
    assert verdict.reason == (
        "no SLSA provenance attestation signed by the policy's keyless identities (an"
        " in-toto statement of https://slsa.dev/provenance/v1 in a Sigstore bundle)"
    )
    rogue = "https://ci.cellops.test/builders/laptop"
    attach(registry, "shop/web", digest, sigstore.bundle(provenance(digest, rogue), SUBJECT))
    verdict = verify(registry, digest, root, policy(builder=BUILDER))
    assert verdict.reason == f"its SLSA provenance names the builder {rogue}, not {BUILDER}"
    attach(registry, "shop/web", digest, sigstore.bundle(provenance(digest, BUILDER), SUBJECT))
    verdict = verify(registry, digest, root, policy(builder=BUILDER))
    assert verdict.ok, verdict.reason


def test_provenance_signed_by_another_identity_does_not_count(
    registry: LocalRegistry, sigstore: TestSigstore
) -> None:
    digest = signed(registry, sigstore)
    forged = sigstore.bundle(provenance(digest, BUILDER), "someone@else.test")
    attach(registry, "shop/web", digest, forged)
    verdict = verify(registry, digest, sigstore.trusted_root(), policy(builder=BUILDER))
    assert verdict.reason is not None and verdict.reason.startswith("no SLSA provenance")


def test_a_bundle_found_through_the_referrers_api(
    registry: LocalRegistry, sigstore: TestSigstore
) -> None:
    digest = registry.push_image("shop/web", "1.0")
    made = sigstore.bundle(statement(digest), SUBJECT, ISSUER)
    found = attach(registry, "shop/web", digest, made, index=False)
    entry = {"mediaType": OCI_MANIFEST, "digest": found, "artifactType": BUNDLE_TYPE}
    with bearer_proxy(registry, {digest: [entry]}) as (host, asked):
        credentials = registry.credentials
        credentials.auths[host] = credentials.auths.pop(registry.host)
        verdict = ImageVerifier(Registry(credentials)).verify(
            f"{host}/shop/web@{digest}", policy(), {ROOT: sigstore.trusted_root()}.__getitem__
        )
    assert verdict.ok, verdict.reason
    assert f"/v2/shop/web/referrers/{digest}" in asked
    assert not any(p.endswith(digest.replace(":", "-")) for p in asked)


def test_an_attestation_is_not_a_signature(registry: LocalRegistry, sigstore: TestSigstore) -> None:
    digest = registry.push_image("shop/web", "1.0")
    attach(registry, "shop/web", digest, sigstore.bundle(provenance(digest, BUILDER), SUBJECT))
    verdict = verify(registry, digest, sigstore.trusted_root())
    assert verdict.reason == (
        "no valid signature: its bundles attest https://slsa.dev/provenance/v1: none is a"
        " signature (https://sigstore.dev/cosign/sign/v1)"
    )
