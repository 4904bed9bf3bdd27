"""Where notifications go: targets from a file (`--notify-config FILE`) or the
environment, never from the fleet repo (a URL with a token in it, or a secret, does not
belong in Git).

The file (YAML or JSON):

    targets:
      - name: ops-slack
        url: https://hooks.slack.com/services/...
        format: slack                 # or json (default)
        events: [rollout-halted, rolled-back]   # default: every notified kind
      - name: audit
        url: https://audit.example/cellops
        secretEnv: AUDIT_HMAC_SECRET  # or secretFile: /etc/cellops/audit.secret

The environment alone: `CELLOPS_NOTIFY_URL`, `CELLOPS_NOTIFY_SECRET`,
`CELLOPS_NOTIFY_FORMAT` (one target named `env`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cellops.model.errors import StartupError
from cellops.notify.messages import TITLES

FORMATS = ("json", "slack")


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    secret: str | None = None
    format: str = "json"
    events: frozenset[str] = frozenset(TITLES)

    def __repr__(self) -> str:  # never print the secret (or a URL's token) in a log
        return f"Target({self.name!r}, format={self.format!r})"


def load_targets(file: Path | None, env: Mapping[str, str] = os.environ) -> list[Target]:
    """The targets of `file`, or of the environment; StartupError (file: field: what)."""
    if file is None:
        url = env.get("CELLOPS_NOTIFY_URL")
        if not url:
            return []
        fmt = env.get("CELLOPS_NOTIFY_FORMAT", "json")
        where = "CELLOPS_NOTIFY_FORMAT"
        return [
            _target(
                {"name": "env", "url": url, "format": fmt},
                where,
                env,
                secret=env.get("CELLOPS_NOTIFY_SECRET"),
            )
        ]
    try:
        data = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise StartupError(f"{file}: cannot read the notification targets: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
        raise StartupError(f"{file}: targets: expected a list of targets (url, format, ...)")
    return [_target(t, f"{file}: targets[{i}]", env) for i, t in enumerate(data["targets"])]


def _target(raw: Any, where: str, env: Mapping[str, str], secret: str | None = None) -> Target:
    if not isinstance(raw, dict):
        raise StartupError(f"{where}: expected a mapping with url, format, events")
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise StartupError(f"{where}.url: expected an http:// or https:// URL")
    fmt = raw.get("format", "json")
    if fmt not in FORMATS:
        raise StartupError(f"{where}.format: {fmt!r} is not one of {', '.join(FORMATS)}")
    events = raw.get("events", sorted(TITLES))
    unknown = set(events) - set(TITLES) if isinstance(events, list) else {str(events)}
    if unknown:
        raise StartupError(
            f"{where}.events: unknown {', '.join(sorted(unknown))}; known: {', '.join(TITLES)}"
        )
    return Target(
        name=str(raw.get("name", url)),
        url=url,
        secret=secret or _secret(raw, where, env),
        format=fmt,
        events=frozenset(events),
    )


def _secret(raw: dict[str, Any], where: str, env: Mapping[str, str]) -> str | None:
    if "secret" in raw:
        raise StartupError(
            f"{where}.secret: not in the file; use secretEnv (a variable) or secretFile"
        )
    if "secretEnv" in raw:
        value = env.get(str(raw["secretEnv"]))
        if not value:
            raise StartupError(f"{where}.secretEnv: {raw['secretEnv']} is not set")
        return value
    if "secretFile" in raw:
        try:
            return Path(str(raw["secretFile"])).read_text().strip() or None
        except OSError as exc:
            raise StartupError(f"{where}.secretFile: cannot read it: {exc.strerror}") from None
    return None
