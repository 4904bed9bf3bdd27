"""Small OCI images built offline, and cosign signatures for them, for the demo, the tests
and the benchmarks: busybox's static binary and a few files packed as one layer, written
as an OCI image layout, pushed to a registry over the distribution API; a signature in
cosign's format (a simple-signing payload layer, its ECDSA signature in the layer's
`dev.cosignproject.cosign/signature` annotation, at the `sha256-<hex>.sig` tag).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Mapping
from pathlib import Path

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PAYLOAD_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
BUSYBOX = "/bin/busybox"

# Serves /www on $HOST:$PORT (busybox httpd): / says which replica and VERSION answered (as
# JSON, from /cgi-bin/index.cgi), /hello.txt is a static file for probes. EXIT_AT_START=1:
# exits at once (a crash loop). On SIGTERM it stops httpd and exits 0 (as PID 1 a process
# gets no default SIGTERM action).
HTTPD = (
    'if [ -n "$EXIT_AT_START" ]; then echo "exiting at start, as told"; exit 3; fi\n'
    'echo "listening on $HOST:$PORT as $CELLOPS_REPLICA"\n'
    '/bin/busybox httpd -f -p "$HOST:$PORT" -h /www & pid=$!\n'
    "trap '/bin/busybox kill $pid; exit 0' TERM\n"
    "wait $pid\n"
)
WHO = (
    "#!/bin/busybox sh\n"
    'printf "Content-Type: application/json\\r\\n\\r\\n"\n'
    'printf \'{"replica": "%s", "version": "%s", "host": "%s", "port": %s}\' '
    '"$CELLOPS_REPLICA" "$VERSION" "$HOST" "$PORT"\n'
)


def httpd_files(note: str) -> dict[str, tuple[bytes, int]]:
    """The files of a busybox httpd image: path -> (content, mode)."""
    return {
        "serve.sh": (HTTPD.encode(), 0o755),
        "www/hello.txt": (f"hello from {note}\n".encode(), 0o644),
        "www/cgi-bin/index.cgi": (WHO.encode(), 0o755),
    }


HTTPD_COMMAND = ["/bin/busybox", "sh", "/serve.sh"]


def rootfs(files: Mapping[str, tuple[bytes, int]]) -> bytes:
    """A layer's tar: busybox (when installed) at /bin/busybox, and `files`."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        busybox = shutil.which("busybox") or (BUSYBOX if Path(BUSYBOX).exists() else None)
        if busybox is not None:
            tar.add(busybox, "bin/busybox")
        for path, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def write_layout(
    layout: Path, tag: str, layer_tar: bytes, command: list[str]
) -> tuple[bytes, list[bytes]]:
    """An OCI image layout at `layout` holding one image tagged `tag`: its manifest's bytes
    and its blobs (config, layer)."""
    layer = gzip.compress(layer_tar, mtime=0)
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": command},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": blob_descriptor(OCI_CONFIG, config),
            "layers": [blob_descriptor(LAYER, layer)],
        }
    ).encode()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for blob in (config, layer, manifest):
        (layout / "blobs" / "sha256" / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    entry = blob_descriptor(OCI_MANIFEST, manifest)
    entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return manifest, [config, layer]


def blob_descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


def simple_signing(host: str, repository: str, digest: str) -> bytes:
    """cosign's payload: the image's name and digest, signed as is."""
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": f"{host}/{repository}"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()


SigningKey = ec.EllipticCurvePrivateKey


def new_key_pair() -> tuple[SigningKey, bytes]:
    """A key pair as `cosign generate-key-pair` makes (ECDSA P-256); the public half as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, public


class Pusher:
    """Pushes blobs and manifests to one registry (`session`: its credentials, its CA)."""

    def __init__(
        self, host: str, session: requests.Session | None = None, scheme: str = "http"
    ) -> None:
        self.host = host
        self.session = session or requests.Session()
        self.scheme = scheme

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}{path}"

    def blob(self, repository: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = self.session.post(self.url(f"/v2/{repository}/blobs/uploads/"), timeout=30)
        start.raise_for_status()
        location = start.headers["Location"]
        location = self.url(location) if location.startswith("/") else location
        done = self.session.put(location, params={"digest": digest}, data=data, timeout=30)
        done.raise_for_status()
        return digest

    def manifest(self, repository: str, reference: str, manifest: dict[str, object]) -> str:
        body = json.dumps(manifest, separators=(",", ":")).encode()
        kind = str(manifest.get("mediaType", OCI_MANIFEST))
        url = self.url(f"/v2/{repository}/manifests/{reference}")
        self.session.put(
            url, data=body, headers={"Content-Type": kind}, timeout=30
        ).raise_for_status()
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def image(self, repository: str, tag: str, layout: Path, note: str) -> str:
        """A busybox httpd image (`httpd_files`), tagged `tag`; its digest."""
        manifest, blobs = write_layout(layout, tag, rootfs(httpd_files(note)), HTTPD_COMMAND)
        for blob in blobs:
            self.blob(repository, blob)
        return self.manifest(repository, tag, json.loads(manifest))

    def sign(self, repository: str, digest: str, key: SigningKey) -> str:
        """A cosign signature of `digest` by `key`, at `sha256-<hex>.sig`."""
        payload = simple_signing(self.host, repository, digest)
        signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
        self.blob(repository, payload)
        layer = blob_descriptor(PAYLOAD_TYPE, payload)
        layer["annotations"] = {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()}
        self.blob(repository, b"{}")
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": blob_descriptor(OCI_CONFIG, b"{}"),
            "layers": [layer],
        }
        return self.manifest(repository, digest.replace(":", "-") + ".sig", manifest)
