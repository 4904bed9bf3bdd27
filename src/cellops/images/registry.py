"""A read-only OCI distribution client: manifests, blobs and referrers, every read bounded
in size and checked against its digest; Docker `config.json` credentials, basic auth and
bearer-token challenges. Every request is counted (`requests`), so a cached verdict can be
seen to cost none."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from cellops.images.auth import Credentials, TokenCache, challenge_of

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MAX_MANIFEST = 4 * 1024 * 1024  # what the distribution spec lets a registry refuse above
MAX_BLOB = 1024 * 1024  # a signature payload is a few hundred bytes
MAX_TOKEN = 64 * 1024
TIMEOUT = 10.0


class RegistryError(Exception):
    """A registry that cannot be read: `transient` when it may answer later (down, 5xx)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class NotFound(RegistryError):
    pass


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return data


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in ("localhost", "127.0.0.1", "[::1]")


class Registry:
    """Reads from registries by host; plain HTTP only to loopback hosts (as Docker does).
    `ca_bundle`: a PEM file of the certificate authorities to trust, in place of the
    system's ($REQUESTS_CA_BUNDLE does the same without code)."""

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        max_manifest: int = MAX_MANIFEST,
        max_blob: int = MAX_BLOB,
        ca_bundle: Path | None = None,
    ) -> None:
        self._credentials = credentials
        self.max_manifest = max_manifest
        self.max_blob = max_blob
        self.requests = 0
        self._tokens = TokenCache()
        self._schemes: dict[str, str] = {}  # host -> the scheme it answered on
        self._session = requests.Session()
        # explicit, so that $REQUESTS_CA_BUNDLE does not override it (True: it may)
        self._verify: str | bool = str(ca_bundle) if ca_bundle is not None else True

    @property
    def credentials(self) -> Credentials:
        """Docker's config.json, read when a registry first asks for credentials."""
        if self._credentials is None:
            self._credentials = Credentials.from_docker_config()
        return self._credentials

    def manifest(self, host: str, repository: str, reference: str) -> Manifest:
        """The manifest a tag or digest names; its digest is computed from what was read."""
        path = f"/v2/{repository}/manifests/{reference}"
        response = self._get(host, repository, path, {"Accept": ", ".join(MANIFEST_TYPES)})
        body = self._read(response, self.max_manifest, f"manifest {repository}:{reference}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in MANIFEST_TYPES:
            raise RegistryError(
                f"{host}/{repository}:{reference} has media type {media_type!r}: expected an"
                " OCI or Docker image manifest"
            )
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"{host}/{repository}@{reference}: the registry sent {digest}")
        return Manifest(digest, media_type, body)

    def blob(self, host: str, repository: str, digest: str) -> bytes:
        response = self._get(host, repository, f"/v2/{repository}/blobs/{digest}", {})
        body = self._read(response, self.max_blob, f"blob {digest}")
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise RegistryError(f"blob {digest} of {host}/{repository} does not match its digest")
        return body

    def referrers(self, host: str, repository: str, digest: str) -> list[dict[str, Any]] | None:
        """What refers to `digest` (OCI 1.1), or None when the registry has no referrers API."""
        try:
            response = self._get(
                host, repository, f"/v2/{repository}/referrers/{digest}", {"Accept": INDEX_TYPE}
            )
        except NotFound:
            return None
        if response.headers.get("Content-Type", "").split(";")[0].strip() != INDEX_TYPE:
            response.close()
            return None  # a registry without the API may answer with something else
        body = self._read(response, self.max_manifest, f"referrers of {digest}")
        try:
            index = json.loads(body)
        except ValueError:
            why = f"{host}/{repository}: its referrers of {digest} are not JSON"
            raise RegistryError(why) from None
        manifests = index.get("manifests") if isinstance(index, dict) else None
        return [m for m in manifests or [] if isinstance(m, dict)]

    def _get(
        self, host: str, repository: str, path: str, headers: dict[str, str]
    ) -> requests.Response:
        auth = self._tokens.header(host, repository)
        response = self._send(host, path, {**headers, **auth})
        if response.status_code == 401:
            response.close()
            challenge = challenge_of(response.headers.get("WWW-Authenticate", ""))
            try:  # a malformed config.json, a token service without a token, no boto3
                header = self._tokens.answer(
                    challenge, host, repository, self.credentials, self._fetch
                )
            except ValueError as exc:
                raise RegistryError(str(exc)) from None
            response = self._send(host, path, {**headers, **header})
        if response.status_code == 404:
            response.close()
            raise NotFound(f"{host}{path}: not found")
        if response.status_code >= 400:
            response.close()
            raise RegistryError(
                f"{host}{path}: the registry answered {response.status_code}",
                transient=response.status_code >= 500 or response.status_code == 429,
            )
        return response

    def _send(self, host: str, path: str, headers: dict[str, str]) -> requests.Response:
        """HTTPS; a loopback host that does not speak TLS is asked over plain HTTP (as
        Docker does), remembered per host."""
        scheme = self._schemes.get(host, "https")
        url = f"{scheme}://{host}{path}"
        self.requests += 1
        try:
            response = self._session.get(
                url, headers=headers, stream=True, timeout=TIMEOUT, verify=self._verify
            )
        except requests.exceptions.ConnectionError as exc:  # TLS refused, or nothing there
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise RegistryError(
                    f"{host}: its TLS certificate is not trusted ({exc}): give its CA in"
                    " $REQUESTS_CA_BUNDLE"
                ) from None
            if not is_loopback(host) or host in self._schemes:
                raise RegistryError(f"cannot reach {url}: {exc}", transient=True) from None
            self._schemes[host] = "http"
            return self._send(host, path, headers)
        except requests.RequestException as exc:
            raise RegistryError(f"cannot reach {url}: {exc}", transient=True) from None
        self._schemes.setdefault(host, scheme)
        return response

    def _fetch(self, url: str, params: dict[str, str], headers: dict[str, str]) -> bytes:
        self.requests += 1
        try:
            response = self._session.get(
                url,
                params=params,
                headers=headers,
                stream=True,
                timeout=TIMEOUT,
                verify=self._verify,
            )
        except requests.RequestException as exc:
            raise RegistryError(f"cannot reach {url}: {exc}", transient=True) from None
        if response.status_code != 200:
            response.close()
            raise RegistryError(f"{url} refused a token: {response.status_code}")
        return self._read(response, MAX_TOKEN, f"the token from {url}")

    @staticmethod
    def _read(response: requests.Response, limit: int, what: str) -> bytes:
        with response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise RegistryError(f"{what} is {declared} bytes: over the limit of {limit}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > limit:
                    raise RegistryError(f"{what} is over the limit of {limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
