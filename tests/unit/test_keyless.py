"""Keyless signatures without a registry: Sigstore bundles of the tests' own Sigstore
instance (tests/sigstorekit.py) verified offline by `cellops.images.keyless`, the trusted
root file refused with its path when sigstore cannot use it, and the policy's keyless
authorities validated (tests/integration/test_image_keyless.py: the same against a real
registry)."""

from __future__ import annotations

import datetime
import json

import pytest
from pydantic import ValidationError

from cellops.images import keyless, trust
from cellops.images.keyless import Authority, NotARoot, Statement
from cellops.spec.image_policy import ImagePolicy
from tests.sigstorekit import (
    SLSA_PREDICATE,
    TestSigstore,
    provenance,
    statement,
)

ISSUER = "https://issuer.cellops.test"
SUBJECT = "release@cellops.test"
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


@pytest.fixture(scope="module")
def sigstore() -> TestSigstore:
    return TestSigstore()


def authority(
    sigstore: TestSigstore, *, subject: str | None = SUBJECT, pattern: str | None = None
) -> Authority:
    verifier = keyless.load_root("keys/root.json", sigstore.trusted_root())
    return Authority(ISSUER, subject, pattern, verifier)


def check(sigstore: TestSigstore, bundle: bytes, **who: str | None) -> Statement:
    return keyless.verify(bundle, DIGEST, [authority(sigstore, **who)])


def test_a_bundle_by_the_identity_verifies(sigstore: TestSigstore) -> None:
    found = check(sigstore, sigstore.bundle(statement(DIGEST), SUBJECT, ISSUER))
    assert found == Statement(f"{SUBJECT} ({ISSUER})", keyless.SIGN_PREDICATE, {})


def test_a_subject_pattern_must_match_in_full(sigstore: TestSigstore) -> None:
    bundle = sigstore.bundle(statement(DIGEST), SUBJECT, ISSUER)
    found = check(sigstore, bundle, subject=None, pattern=r"[a-z]+@cellops\.test")
    assert found.signer == f"{SUBJECT} ({ISSUER})"
    with pytest.raises(ValueError, match="do not match 'release'"):
        check(sigstore, bundle, subject=None, pattern="release")


def later() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("subject", "Certificate's SANs do not match release@cellops.test"),
        ("issuer", "Certificate's OIDCIssuer does not match (got 'https://evil.test'"),
        ("expired", "failed to build timestamp certificate chain: certificate has expired"),
        ("replay", f"its statement names {OTHER}, not this image: a replayed signature"),
        ("tampered", "DSSE: invalid signature"),
        ("stranger", "unable to get local issuer certificate"),
    ],
)
def test_a_bad_bundle_is_refused_with_why(sigstore: TestSigstore, case: str, why: str) -> None:
    bundle = {
        "subject": lambda: sigstore.bundle(statement(DIGEST), "mallory@cellops.test", ISSUER),
        "issuer": lambda: sigstore.bundle(statement(DIGEST), SUBJECT, "https://evil.test"),
        "expired": lambda: sigstore.bundle(statement(DIGEST), SUBJECT, ISSUER, logged_at=later()),
        "replay": lambda: sigstore.bundle(statement(OTHER), SUBJECT, ISSUER),
        "tampered": lambda: sigstore.bundle(statement(DIGEST), SUBJECT, ISSUER, tamper=True),
        "stranger": lambda: TestSigstore().bundle(statement(DIGEST), SUBJECT, ISSUER),
    }[case]()
    with pytest.raises(ValueError) as refused:
        check(sigstore, bundle)
    assert why in str(refused.value)


def test_a_bundle_whose_log_entry_is_not_in_the_logged_tree(sigstore: TestSigstore) -> None:
    bundle = json.loads(sigstore.bundle(statement(DIGEST), SUBJECT, ISSUER))
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["hashes"] = list(reversed(proof["hashes"]))
    with pytest.raises(ValueError, match="inclusion proof contains invalid root hash"):
        check(sigstore, json.dumps(bundle).encode())


@pytest.mark.parametrize(
    "data", [b"not json", b"[]", b'{"mediaType": "text/plain"}', b"{}"], ids=repr
)
def test_a_trusted_root_sigstore_cannot_use_names_its_file(data: bytes) -> None:
    with pytest.raises(NotARoot) as refused:
        keyless.load_root("keys/root.json", data)
    assert str(refused.value).startswith("keys/root.json: not a Sigstore trusted root (")


def hostile(sigstore: TestSigstore, case: str) -> bytes:
    """A bundle of the right CA and log, spoiled in one way a registry could send."""
    bundle = json.loads(sigstore.bundle(statement(DIGEST), SUBJECT, ISSUER))
    material, envelope = bundle["verificationMaterial"], bundle["dsseEnvelope"]
    if case == "deep":
        return b"[" * 100_000 + b"]" * 100_000
    if case == "junk certificate":
        material["certificate"]["rawBytes"] = "anVuaw=="
    elif case == "no log entry":
        material["tlogEntries"] = []
    elif case == "no signature":
        envelope["signatures"] = []
    elif case == "a message signature":
        del bundle["dsseEnvelope"]
        bundle["messageSignature"] = {"signature": "AAAA"}
    return json.dumps(bundle).encode()


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("deep", "not a Sigstore bundle (failed to load bundle"),
        ("junk certificate", "not a Sigstore bundle (error parsing asn1 value"),
        ("no log entry", "not a Sigstore bundle (expected exactly one log entry"),
        ("no signature", "envelope must contain exactly one signature"),
        ("a message signature", "cannot perform DSSE verification on a bundle without"),
    ],
)
def test_a_hostile_bundle_is_refused_not_a_crash(
    sigstore: TestSigstore, case: str, why: str
) -> None:
    with pytest.raises(ValueError) as refused:
        check(sigstore, hostile(sigstore, case))
    assert str(refused.value).startswith(why)


def test_not_a_bundle() -> None:
    with pytest.raises(ValueError, match=r"^not a Sigstore bundle \("):
        keyless.verify(b'{"mediaType": "x"}', DIGEST, [])


def test_provenance_names_its_builder_in_slsa_v1_and_v02() -> None:
    v1 = json.loads(provenance(DIGEST, "ci/v1"))
    v02 = {"builder": {"id": "ci/v02"}}
    found = [
        Statement("s", SLSA_PREDICATE, v1["predicate"]),
        Statement("s", "https://slsa.dev/provenance/v0.2", v02),
    ]
    assert trust._provenance(found, "ci/v1") is None
    assert trust._provenance(found, "ci/v02") is None
    assert trust._provenance(found, "ci/v3") == (
        "its SLSA provenance names the builder ci/v02, ci/v1, not ci/v3"
    )


# -- the policy ------------------------------------------------------------------------------
def refused(**authority: object) -> str:
    with pytest.raises(ValidationError) as caught:
        ImagePolicy.model_validate({"signatures": [authority]})
    return str(caught.value)


def test_a_keyless_identity_needs_issuer_subject_and_trusted_root() -> None:
    root = "keys/trusted_root.json"
    assert "required for a keyless identity: the OIDC issuer" in refused(
        subject=SUBJECT, trustedRoot=root
    )
    assert "needs subject or subjectPattern (one of them)" in refused(
        issuer=ISSUER, trustedRoot=root
    )
    assert "needs subject or subjectPattern (one of them)" in refused(
        issuer=ISSUER, subject=SUBJECT, subjectPattern=".*", trustedRoot=root
    )
    assert "required for a keyless identity: the path of Sigstore's trusted_root.json" in (
        refused(issuer=ISSUER, subject=SUBJECT)
    )
    assert "not a regular expression" in refused(
        issuer=ISSUER, subjectPattern="(", trustedRoot=root
    )
    assert "a key or a keyless identity, not both" in refused(key="k.pub", issuer=ISSUER)


def test_files_stay_inside_the_fleet_repo() -> None:
    outside = refused(issuer=ISSUER, subject=SUBJECT, trustedRoot="keys/../../root.json")
    assert "must stay inside the fleet repo" in outside
    assert "should match pattern" in refused(
        issuer=ISSUER, subject=SUBJECT, trustedRoot="/etc/root.json"
    )
    assert "must stay inside the fleet repo" in refused(key="../cosign.pub")


def test_provenance_needs_a_keyless_identity() -> None:
    with pytest.raises(ValidationError, match="provenance needs a keyless identity"):
        ImagePolicy.model_validate(
            {"signatures": [{"key": "keys/cosign.pub"}], "provenance": {"builder": "ci"}}
        )
