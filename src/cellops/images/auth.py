"""Registry credentials and the answer to a registry's challenge.

Credentials come from Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
`~/.docker/config.json`: `auths.<host>.auth`, base64 of `user:password`), and for Amazon
ECR hosts from boto3's `get_authorization_token` (boto3 installed separately). A `Basic`
challenge is answered with them; a `Bearer` one by fetching a token from its realm.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com\Z")
_PARAM = re.compile(r'(\w+)="([^"]*)"')

Fetch = Callable[[str, dict[str, str], dict[str, str]], bytes]


@dataclass
class Credentials:
    """`user:password` by registry host."""

    auths: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_docker_config(cls, path: Path | None = None) -> Credentials:
        if path is None:
            folder = os.environ.get("DOCKER_CONFIG")
            path = Path(folder) if folder else Path.home() / ".docker"
            path = path / "config.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a Docker config.json: {exc}") from None
        auths: dict[str, str] = {}
        for host, entry in (data.get("auths") or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("auth"), str):
                auths[host.removeprefix("https://").removeprefix("http://")] = entry["auth"]
        return cls(auths)

    def basic(self, host: str) -> str | None:
        """The `Authorization` value for `host`, or None without credentials."""
        if host not in self.auths and ECR_HOST.match(host):
            self.auths[host] = ecr_token(host)
        token = self.auths.get(host)
        return f"Basic {token}" if token else None


def ecr_token(host: str) -> str:
    """An ECR registry's base64 `AWS:<password>`, from the AWS credentials boto3 finds."""
    try:  # optional: only ECR users need it (and it ships no type information)
        boto3: Any = importlib.import_module("boto3")
    except ImportError:
        raise ValueError(f"{host} is an ECR registry: install boto3 to read from it") from None
    match = ECR_HOST.match(host)
    assert match is not None
    client = boto3.client("ecr", region_name=match.group(1))
    data = client.get_authorization_token(registryIds=[host.split(".", 1)[0]])
    return str(data["authorizationData"][0]["authorizationToken"])


def challenge_of(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="…",service="…",scope="…"` as ('bearer', {realm, service, scope})."""
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(_PARAM.findall(rest))


class TokenCache:
    """The `Authorization` header that last worked, by host and repository."""

    def __init__(self) -> None:
        self._headers: dict[tuple[str, str], dict[str, str]] = {}

    def header(self, host: str, repository: str) -> dict[str, str]:
        return self._headers.get((host, repository), {})

    def answer(
        self,
        challenge: tuple[str, dict[str, str]],
        host: str,
        repository: str,
        credentials: Credentials,
        fetch: Fetch,
    ) -> dict[str, str]:
        scheme, params = challenge
        basic = credentials.basic(host)
        if scheme == "basic":
            header = {"Authorization": basic} if basic else {}
        elif scheme == "bearer" and "realm" in params:
            query = {"service": params.get("service", host)}
            query["scope"] = params.get("scope", f"repository:{repository}:pull")
            body = fetch(params["realm"], query, {"Authorization": basic} if basic else {})
            header = {"Authorization": f"Bearer {_token_of(body, host)}"}
        else:
            header = {}
        self._headers[(host, repository)] = header
        return header


def _token_of(body: bytes, host: str) -> str:
    try:
        data: Any = json.loads(body)
        token = data.get("token") or data.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise ValueError(f"{host}'s token service answered without a token")
    return token
