"""A Sigstore instance of the tests' own, offline: a Fulcio-like CA issuing short-lived
certificates (the OIDC issuer extension, the identity as SAN, an embedded SCT signed by a
test CT log key), a Rekor-like log (a real RFC 6962 Merkle tree; the entry's inclusion
proof, a signed checkpoint and a signed inclusion promise), the `trusted_root.json` naming
those keys, and bundles (v0.3, a DSSE envelope around an in-toto statement) as cosign 3
signs and attests images, attached to an image as OCI 1.1 referrers (with the referrers tag
`sha256-<hex>` for registries without the referrers API)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import struct
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.imagekit import LocalRegistry

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
INTOTO = "application/vnd.in-toto+json"
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
SLSA_PREDICATE = "https://slsa.dev/provenance/v1"
ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
UTC = datetime.UTC
DER = serialization.Encoding.DER


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    return hashlib.sha256(_der(key)).digest()


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _canonical(value: object) -> bytes:
    """RFC 8785 for what the tests sign (ASCII keys, strings and integers)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return _node(merkle_root(leaves[:split]), merkle_root(leaves[split:]))


def inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(index, leaves): the audit path, lowest level first."""
    if len(leaves) == 1:
        return []
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < split:
        return [*inclusion_path(index, leaves[:split]), merkle_root(leaves[split:])]
    return [*inclusion_path(index - split, leaves[split:]), merkle_root(leaves[:split])]


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the envelope's signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement(digest: str, predicate_type: str = SIGN_PREDICATE, predicate: object = None) -> bytes:
    """An in-toto v1 statement about the image `digest` (cosign 3's signature when the
    predicate type is cosign's sign/v1)."""
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"digest": {"sha256": digest.removeprefix("sha256:")}}],
            "predicateType": predicate_type,
            "predicate": predicate if predicate is not None else {},
        }
    ).encode()


def provenance(digest: str, builder: str) -> bytes:
    """A SLSA v1 provenance statement: `digest` built by `builder`."""
    predicate = {
        "buildDefinition": {"buildType": "https://cellops.dev/tests/build/v1"},
        "runDetails": {"builder": {"id": builder}},
    }
    return statement(digest, SLSA_PREDICATE, predicate)


@dataclass
class TestSigstore:
    """The CA, CT log and transparency log keys, and what they have logged."""

    __test__ = False  # not a test class, despite its name

    ca_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    ct_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    log_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    origin: str = "rekor.cellops.test - 1"
    leaves: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        now = datetime.datetime.now(UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cellops tests fulcio")])
        public = self.ca_key.public_key()
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        # other entries of the log, so that the inclusion proof has a real path
        self.leaves = [_leaf_hash(b"another entry %d" % i) for i in range(5)]

    def trusted_root(self) -> bytes:
        """Sigstore's trusted_root.json for this instance."""
        start = {"start": "2020-01-01T00:00:00Z"}

        def log(key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, object]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(_der(key.public_key())),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": start,
                },
                "logId": {"keyId": _b64(_key_id(key.public_key()))},
            }

        ca_der = self.ca.public_bytes(serialization.Encoding.DER)
        root = {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(self.log_key, "https://rekor.cellops.test")],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "cellops tests", "commonName": "fulcio"},
                    "uri": "https://fulcio.cellops.test",
                    "certChain": {"certificates": [{"rawBytes": _b64(ca_der)}]},
                    "validFor": start,
                }
            ],
            "ctlogs": [log(self.ct_key, "https://ctfe.cellops.test")],
            "timestampAuthorities": [],
        }
        return json.dumps(root, indent=2).encode()

    def certificate(
        self, key: ec.EllipticCurvePrivateKey, subject: str, issuer: str, at: datetime.datetime
    ) -> x509.Certificate:
        """A Fulcio-like certificate valid ten minutes from `at`, with an embedded SCT."""
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(at)
            .not_valid_after(at + datetime.timedelta(minutes=10))
            .add_extension(_leaf_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .add_extension(_san(subject), critical=True)
            .add_extension(x509.UnrecognizedExtension(ISSUER_OID, issuer.encode()), False)
            .add_extension(x509.UnrecognizedExtension(ISSUER_V2_OID, _utf8(issuer)), False)
        )
        precert = builder.sign(self.ca_key, hashes.SHA256())
        sct = self._sct(precert.tbs_certificate_bytes, at)
        value = _octets(struct.pack("!H", len(sct) + 2) + struct.pack("!H", len(sct)) + sct)
        return builder.add_extension(x509.UnrecognizedExtension(SCT_OID, value), False).sign(
            self.ca_key, hashes.SHA256()
        )

    def _sct(self, tbs: bytes, at: datetime.datetime) -> bytes:
        """An RFC 6962 SCT (v1, precert entry) over `tbs`, signed by the CT log key."""
        millis = int(at.timestamp() * 1000)
        issuer_key_hash = _key_id(self.ca_key.public_key())
        signed = struct.pack("!BBQH", 0, 0, millis, 1) + issuer_key_hash
        signed += len(tbs).to_bytes(3, "big") + tbs + struct.pack("!H", 0)
        signature = _sign(self.ct_key, signed)
        return (
            struct.pack("!B", 0)
            + _key_id(self.ct_key.public_key())
            + struct.pack("!QH", millis, 0)
            + struct.pack("!BBH", 4, 3, len(signature))
            + signature
        )

    def bundle(
        self,
        payload: bytes,
        subject: str = "builder@cellops.test",
        issuer: str = "https://issuer.cellops.test",
        *,
        signed_at: datetime.datetime | None = None,
        logged_at: datetime.datetime | None = None,
        tamper: bool = False,
    ) -> bytes:
        """A v0.3 bundle: `payload` (an in-toto statement) in a DSSE envelope signed with an
        ephemeral key certified for `subject` by `issuer`, logged at `logged_at` (default:
        now). `tamper`: the envelope's payload changed after signing and logging."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(UTC).replace(microsecond=0)
        cert = self.certificate(
            key, subject, issuer, signed_at or now - datetime.timedelta(minutes=1)
        )
        signature = _sign(key, pae(INTOTO, payload))
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        body = _canonical(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {"algorithm": "sha256", "value": "00" * 32},
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(payload).hexdigest(),
                    },
                    "signatures": [{"signature": _b64(signature), "verifier": _b64(cert_pem)}],
                },
            }
        )
        entry = self._log(body, int((logged_at or now).timestamp()))
        if tamper:
            payload = payload.replace(b'"predicate": {', b'"predicate": {"x": 1, ', 1)
        return json.dumps(
            {
                "mediaType": BUNDLE_TYPE,
                "verificationMaterial": {
                    "certificate": {
                        "rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))
                    },
                    "tlogEntries": [entry],
                },
                "dsseEnvelope": {
                    "payload": _b64(payload),
                    "payloadType": INTOTO,
                    "signatures": [{"sig": _b64(signature), "keyid": ""}],
                },
            }
        ).encode()

    def _log(self, body: bytes, integrated: int) -> dict[str, object]:
        """Appends `body` to the log: its entry with inclusion proof, signed checkpoint and
        signed inclusion promise (the SET)."""
        index = len(self.leaves)
        self.leaves.append(_leaf_hash(body))
        self.leaves.append(_leaf_hash(b"a later entry %d" % index))
        size = len(self.leaves)
        root = merkle_root(self.leaves)
        log_id = _key_id(self.log_key.public_key())
        note = f"{self.origin}\n{size}\n{_b64(root)}\n"
        signed_note = _key_id(self.log_key.public_key())[:4] + _sign(self.log_key, note.encode())
        checkpoint = f"{note}\n\u2014 {self.origin.split()[0]} {_b64(signed_note)}\n"
        promise = _canonical(
            {
                "body": _b64(body),
                "integratedTime": integrated,
                "logID": log_id.hex(),
                "logIndex": index,
            }
        )
        return {
            "logIndex": str(index),
            "logId": {"keyId": _b64(log_id)},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": str(integrated),
            "inclusionPromise": {"signedEntryTimestamp": _b64(_sign(self.log_key, promise))},
            "inclusionProof": {
                "logIndex": str(index),
                "rootHash": _b64(root),
                "treeSize": str(size),
                "hashes": [_b64(h) for h in inclusion_path(index, self.leaves)],
                "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": _b64(body),
        }


def attach(
    registry: LocalRegistry, repository: str, digest: str, bundle: bytes, *, index: bool = True
) -> str:
    """`bundle` attached to the image `digest` as cosign 3 does on a registry without the
    referrers API: a manifest of artifact type BUNDLE_TYPE whose subject is the image, and
    (`index`) the referrers tag `sha256-<hex>` (an OCI index) listing it. The manifest's
    digest."""
    layer = registry._descriptor(repository, BUNDLE_TYPE, bundle)
    config = registry._descriptor(repository, EMPTY, b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_TYPE,
        "config": config,
        "layers": [layer],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": 0},
    }
    body = json.dumps(manifest, separators=(",", ":")).encode()
    found = "sha256:" + hashlib.sha256(body).hexdigest()
    registry.push_manifest(repository, found, manifest)
    if not index:
        return found
    tag = digest.replace(":", "-")
    listing = _referrers_index(registry, repository, tag)
    listing["manifests"].append(
        {"mediaType": OCI_MANIFEST, "digest": found, "size": len(body), "artifactType": BUNDLE_TYPE}
    )
    registry.push_manifest(repository, tag, listing)
    return found


def _referrers_index(registry: LocalRegistry, repository: str, tag: str) -> dict[str, list[object]]:
    response = registry.session.get(
        registry.url(f"/v2/{repository}/manifests/{tag}"), headers={"Accept": OCI_INDEX}
    )
    if response.status_code == 404:
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}  # type: ignore[dict-item]
    assert response.status_code == 200, response.text
    found: dict[str, list[object]] = response.json()
    return found


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(False, False, False, False, False, True, True, False, False)


def _leaf_usage() -> x509.KeyUsage:
    return x509.KeyUsage(True, False, False, False, False, False, False, False, False)


def _san(subject: str) -> x509.SubjectAlternativeName:
    name: x509.GeneralName
    if "@" in subject and "://" not in subject:
        name = x509.RFC822Name(subject)
    else:
        name = x509.UniformResourceIdentifier(subject)
    return x509.SubjectAlternativeName([name])


def _utf8(text: str) -> bytes:
    data = text.encode()
    return b"\x0c" + _length(len(data)) + data


def _octets(data: bytes) -> bytes:
    return b"\x04" + _length(len(data)) + data


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw
