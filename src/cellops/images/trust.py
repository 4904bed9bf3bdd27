"""Who may sign an image under a policy, read from the fleet repo: cosign public keys and
keyless identities (with their trusted roots); and the judgement of an image's signatures
and provenance against them. The fingerprint covers every file's bytes, so a key or root
changed in the fleet is another policy, checked again at once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from cellops.images import cosign, keyless
from cellops.images.registry import Registry
from cellops.spec.image_policy import ImagePolicy

ReadKey = Callable[[str], bytes]  # a path in the fleet repo (at the revision) -> its bytes
SLSA_PREDICATES = ("https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2")
MAX_FILE = 64 * 1024


@dataclass(frozen=True)
class Trust:
    keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    identities: list[keyless.Authority] = field(default_factory=list)
    builder: str | None = None  # SLSA provenance required from this builder
    fingerprint: str = ""

    def __bool__(self) -> bool:
        return bool(self.keys or self.identities)


def load(policy: ImagePolicy, read: ReadKey) -> Trust:
    """The policy's authorities from the fleet repo; raises ValueError naming the file."""
    keys, identities = {}, []
    fingerprint = hashlib.sha256()
    for authority in policy.signatures:
        path = authority.key or authority.trusted_root
        assert path is not None  # the policy's validation requires one
        data = _read(read, path, "key" if authority.key else "trusted root")
        if authority.key is not None:
            keys[path] = cosign.load_key(path, data)
        else:
            assert authority.issuer is not None
            verifier = keyless.load_root(path, data)
            identity = keyless.Authority(
                authority.issuer, authority.subject, authority.subject_pattern, verifier
            )
            identities.append(identity)
        described = f"{authority.model_dump_json()}\0{path}\0".encode()
        fingerprint.update(described + data + b"\0")
    builder = policy.provenance.builder if policy.provenance is not None else None
    fingerprint.update(f"provenance\0{builder}".encode())
    return Trust(keys, identities, builder, fingerprint.hexdigest())


def _read(read: ReadKey, path: str, what: str) -> bytes:
    try:
        return read(path)
    except (OSError, KeyError):
        raise ValueError(
            f"{path}: the {what} file is not in the fleet repo (as a regular file of at most"
            f" {MAX_FILE // 1024} KiB, not a symlink)"
        ) from None


def judge(
    registry: Registry, host: str, repository: str, digest: str, trust: Trust
) -> tuple[str | None, str | None]:
    """(signer, None) when `digest` carries a valid signature by one of `trust`'s
    authorities (and the provenance it asks for), else (None, why not). Raises
    RegistryError when the registry cannot be read."""
    reasons: list[str] = []
    found = False
    signer = None
    if trust.keys:
        for signature in cosign.signatures(registry, host, repository, digest):
            found = True
            try:
                signer = cosign.check(signature, digest, trust.keys)
                break
            except ValueError as exc:
                reasons.append(str(exc))
    statements: list[keyless.Statement] = []
    if trust.identities and (signer is None or trust.builder):
        for bundle in keyless.bundles(registry, host, repository, digest):
            try:
                statements.append(keyless.verify(bundle, digest, trust.identities))
            except ValueError as exc:
                reasons.append(str(exc))
    signed = [s for s in statements if s.predicate_type == keyless.SIGN_PREDICATE]
    if statements and not signed:
        kinds = ", ".join(sorted({s.predicate_type for s in statements}))
        reasons.append(
            f"its bundles attest {kinds}: none is a signature ({keyless.SIGN_PREDICATE})"
        )
    found = found or bool(signed) or bool(reasons)
    signer = signer or (signed[0].signer if signed else None)
    if signer is None:
        return None, _unsigned(digest, trust, found, reasons)
    if trust.builder is not None:
        why = _provenance(statements, trust.builder)
        if why is not None:
            return None, why
    return signer, None


def _unsigned(digest: str, trust: Trust, found: bool, reasons: list[str]) -> str:
    kinds = []
    if trust.keys:
        kinds.append("cosign signature (referrers, or the tag sha256-….sig)")
    if trust.identities:
        kinds.append("Sigstore bundle (referrers, or the referrers tag sha256-…)")
    if not found:
        return f"{digest} has no {' or '.join(kinds)}"
    what = "cosign signature" if not trust.identities else "signature"
    return f"no valid {what}: " + "; ".join(sorted(set(reasons)))


def _provenance(statements: list[keyless.Statement], builder: str) -> str | None:
    builders = set()
    for statement in statements:
        if statement.predicate_type not in SLSA_PREDICATES:
            continue
        found = _builder_id(statement.predicate)
        if found == builder:
            return None
        builders.add(str(found))
    if not builders:
        return (
            f"no SLSA provenance attestation signed by the policy's keyless identities"
            f" (an in-toto statement of {SLSA_PREDICATES[0]} in a Sigstore bundle)"
        )
    return f"its SLSA provenance names the builder {', '.join(sorted(builders))}, not {builder}"


def _builder_id(predicate: object) -> object:
    """The builder of a SLSA v1 (`runDetails.builder.id`) or v0.2 (`builder.id`) predicate."""
    if not isinstance(predicate, dict):
        return None
    run = predicate.get("runDetails")
    holder = run if isinstance(run, dict) else predicate
    builder = holder.get("builder")
    return builder.get("id") if isinstance(builder, dict) else None
