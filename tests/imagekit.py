"""A real registry and real images for the image tests: Debian's `docker-registry` on a free
port of 127.0.0.1 behind htpasswd basic auth, images written as OCI images by the test (a
root filesystem with busybox when it is installed, else one file) and pushed over the
distribution API, and cosign signatures made with the tests' own keys in cosign's format
(a simple-signing payload layer, its signature in `dev.cosignproject.cosign/signature`)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cellops.images import build
from cellops.images.auth import Credentials
from cellops.images.build import (
    OCI_CONFIG,
    OCI_MANIFEST,
    PAYLOAD_TYPE,
    SIGNATURE_ANNOTATION,
    blob_descriptor,
    simple_signing,
)
from cellops.images.localregistry import free_port, registry_config, serve_registry

USER, PASSWORD = "cellops", "s3cret-for-tests"


@dataclass
class LocalRegistry:
    host: str
    folder: Path
    ca: Path | None = None  # served over TLS with a certificate of this test CA

    def __post_init__(self) -> None:
        self.session = requests.Session()
        self.session.auth = (USER, PASSWORD)
        self.session.verify = str(self.ca) if self.ca else True
        self.session.trust_env = False  # neither a proxy nor $REQUESTS_CA_BUNDLE for it

    @property
    def credentials(self) -> Credentials:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return Credentials({self.host: token})

    def url(self, path: str) -> str:
        return f"{'https' if self.ca else 'http'}://{self.host}{path}"

    @property
    def pusher(self) -> build.Pusher:
        return build.Pusher(self.host, self.session, "https" if self.ca else "http")

    def push_blob(self, repository: str, data: bytes) -> str:
        return self.pusher.blob(repository, data)

    def push_manifest(self, repository: str, reference: str, manifest: dict[str, object]) -> str:
        return self.pusher.manifest(repository, reference, manifest)

    def delete_manifest(self, repository: str, digest: str) -> None:
        response = self.session.delete(self.url(f"/v2/{repository}/manifests/{digest}"))
        assert response.status_code == 202, response.text

    def push_image(self, repository: str, tag: str, note: str = "") -> str:
        """An OCI image (busybox's root filesystem when busybox is installed), written as an
        OCI layout and pushed with skopeo (over the distribution API without skopeo, or
        to a TLS registry); its digest."""
        layout = self.folder / "layouts" / f"{repository.replace('/', '-')}-{tag}-{note}"
        manifest, blobs = write_layout(layout, tag, note)
        skopeo = shutil.which("skopeo")
        if skopeo is not None and self.ca is None:
            command = [skopeo, "--insecure-policy", "copy", "--preserve-digests", "--quiet"]
            command += ["--dest-creds", f"{USER}:{PASSWORD}", "--dest-tls-verify=false"]
            command += [f"oci:{layout}:{tag}", f"docker://{self.host}/{repository}:{tag}"]
            subprocess.run(command, check=True, capture_output=True, timeout=120)
            return "sha256:" + hashlib.sha256(manifest).hexdigest()
        for blob in blobs:
            self.push_blob(repository, blob)
        return self.push_manifest(repository, tag, json.loads(manifest))

    def _descriptor(self, repository: str, media_type: str, data: bytes) -> dict[str, object]:
        self.push_blob(repository, data)
        return blob_descriptor(media_type, data)

    def sign(
        self,
        repository: str,
        digest: str,
        key: ec.EllipticCurvePrivateKey,
        *,
        payload: bytes | None = None,
        signed: bytes | None = None,
        layer_type: str = PAYLOAD_TYPE,
        tag: str | None = None,
    ) -> str:
        """A cosign signature of `digest` at `sha256-<hex>.sig` (as cosign stores it without
        OCI 1.1 referrers). `payload`: what the layer holds (default: cosign's payload for
        `digest`); `signed`: what is signed (default: the payload); `tag`: another tag
        (a signature found only through the referrers API)."""
        payload = payload if payload is not None else simple_signing(self.host, repository, digest)
        signature = key.sign(signed if signed is not None else payload, ec.ECDSA(hashes.SHA256()))
        layer = self._descriptor(repository, layer_type, payload)
        layer["annotations"] = {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()}
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self._descriptor(repository, OCI_CONFIG, b"{}"),
            "layers": [layer],
        }
        return self.push_manifest(repository, tag or digest.replace(":", "-") + ".sig", manifest)


def write_layout(layout: Path, tag: str, note: str) -> tuple[bytes, list[bytes]]:
    """An OCI image layout at `layout` holding one image tagged `tag` (busybox's httpd on
    8080 when busybox is installed): its manifest's bytes and its blobs."""
    files = {"www/index.html": (f"hello from a test image {note}\n".encode(), 0o644)}
    command = ["/bin/busybox", "httpd", "-f", "-p", "8080"]
    return build.write_layout(layout, tag, build.rootfs(files), command)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _htpasswd(path: Path) -> None:
    """The lowest bcrypt cost: the registry checks the password on every request."""
    binary = shutil.which("htpasswd")
    if binary is not None:
        command = [binary, "-Bbc", "-C", "4", str(path), USER, PASSWORD]
        subprocess.run(command, check=True, capture_output=True)
        return
    with warnings.catch_warnings():  # deprecated, but bcrypt is what the registry reads
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    path.write_text(f"{USER}:{hashed}\n")


@contextmanager
def running_registry(
    folder: Path, *, auth: bool = True, port: int | None = None, tls: bool = False
) -> Iterator[LocalRegistry]:
    """Debian's docker-registry on a free port of 127.0.0.1 (or `port`: the same registry
    again), its storage in `folder`; `auth`: behind htpasswd basic auth (USER, PASSWORD);
    `tls`: over HTTPS with a certificate of a CA made for it (`LocalRegistry.ca`)."""
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed (.ci/run installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = folder / "registry.yml"
    config.write_text(registry_config(folder, port))
    ca = _tls(folder, config) if tls else None
    if auth:
        _htpasswd(folder / "htpasswd")
        with config.open("a") as more:
            more.write(
                f"auth: {{htpasswd: {{realm: cellops-tests, path: {folder / 'htpasswd'}}}}}\n"
            )
    with serve_registry(folder, config, port) as host:
        yield LocalRegistry(host, folder, ca)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A registry of the tests' own behind basic auth (import it into a test module)."""
    with running_registry(tmp_path / "registry") as running:
        yield running


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    """A cosign key pair's private half (the fleet gets `public_pem(key)`)."""
    return new_key()


def local_tls(folder: Path) -> Path:
    """A CA and a certificate for 127.0.0.1 it signed (`cert.pem`, `key.pem` in
    `folder`); the CA's certificate file."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = new_key(), new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cellops tests CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "cert.pem").write_bytes(server.public_bytes(pem))
    (folder / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "ca.pem"


def _tls(folder: Path, config: Path) -> Path:
    """`local_tls`, the registry configured to serve it; the CA's certificate file."""
    local_tls(folder)
    text = config.read_text()
    http = re.search(r"^http: \{addr: ([^}]*)\}$", text, re.MULTILINE)
    assert http is not None
    tls = f"tls: {{certificate: {folder / 'cert.pem'}, key: {folder / 'key.pem'}}}"
    config.write_text(text.replace(http[0], f"http: {{addr: {http[1]}, {tls}}}"))
    return folder / "ca.pem"
