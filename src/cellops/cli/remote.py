"""The CLI against a controller's API: `--server URL` (or CELLOPS_SERVER, or the current
context of the config file) and a token (CELLOPS_TOKEN, or the context's).

The config file is kubectl-shaped: `$XDG_CONFIG_HOME/cellops/config.yaml` (default
~/.config/cellops/config.yaml; CELLOPS_CONFIG names another), readable by its owner only:

    current-context: prod
    contexts:
      - name: prod
        server: https://cellops.example.com:8470
        token: cellops_...
        certificate-authority: /etc/cellops/ca.pem   # optional, for a private CA

Every failure is one line and an exit status: 3 the controller cannot be reached or
refuses the token, 2 the token's role does not allow it or no such thing, 1 the rollout
is not in a state that allows it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from cellops.cli.output import Exit, errors


@dataclass(frozen=True)
class Remote:
    server: str
    token: str
    ca: str | None = None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body=body)

    def call(self, method: str, path: str, *, params: Any = None, body: Any = None) -> Any:
        import json
        import ssl
        import urllib.error
        import urllib.parse
        import urllib.request

        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
        url = self.server.rstrip("/") + path + (f"?{query}" if query else "")
        data = None if body is None and method == "GET" else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        context = ssl.create_default_context(cafile=self.ca) if self.ca else None
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _no_redirect()
        )
        try:
            with opener.open(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as refused:
            status, detail = refused.code, _detail(refused.read())
        except (OSError, ValueError) as exc:  # refused, unresolvable, TLS, not JSON
            fail(Exit.SOURCE, f"cannot reach the controller at {self.server}: {_reason(exc)}")
        if status == 401:
            fail(Exit.SOURCE, f"{self.server} refused the token: {detail}")
        if status in (403, 404, 422):
            fail(Exit.USAGE, detail)
        if status == 409:
            fail(Exit.REJECTED, detail)
        return fail(Exit.SOURCE, f"{self.server} answered {status}: {detail}")


def fail(status: Exit, message: str) -> NoReturn:
    errors.print(f"✗ {message}", markup=False)
    raise SystemExit(status)


def _detail(body: bytes) -> str:
    import json

    try:
        return str(json.loads(body).get("detail", body.decode(errors="replace")))
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:200]


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)  # a URLError's own cause
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason or exc).splitlines()[0][:200]


def config_path() -> Path:
    explicit = os.environ.get("CELLOPS_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cellops" / "config.yaml"


def load_config() -> dict[str, Any]:
    path = config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {"contexts": []}  # and YAML is not even loaded
    except OSError as exc:
        fail(Exit.USAGE, f"cannot read {path}: {exc}")
    import yaml

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        fail(Exit.USAGE, f"cannot read {path}: {exc}")
    if not isinstance(data, dict) or not isinstance(data.get("contexts", []), list):
        fail(Exit.USAGE, f"{path}: expected a mapping with a list of contexts")
    data.setdefault("contexts", [])
    return data


def selected(server: str | None) -> Remote | None:
    """The controller to ask: `server` (option or CELLOPS_SERVER), else the config's
    current context; None for the state on this host."""
    config = load_config()
    contexts = {str(c.get("name")): c for c in config["contexts"] if isinstance(c, dict)}
    current = contexts.get(str(config.get("current-context")))
    if server is None and current is None:
        return None
    if server is None:
        assert current is not None
        server = str(current.get("server") or "")
        if not server:
            fail(Exit.USAGE, f"context {current.get('name')!r} in {config_path()} has no server")
    # a context's token goes only to that context's server: a --server (or CELLOPS_SERVER)
    # no context names gets CELLOPS_TOKEN alone, never the current context's token
    by_server = next(
        (c for c in contexts.values() if _same(str(c.get("server") or ""), server)), None
    )
    token = os.environ.get("CELLOPS_TOKEN") or (by_server or {}).get("token")
    if not token:
        fail(
            Exit.USAGE,
            f"no token for {server}: set CELLOPS_TOKEN, or `cellops config set-context NAME"
            f" --server {server} --token-file FILE`",
        )
    ca = (by_server or {}).get("certificate-authority")
    return Remote(server, str(token), None if ca is None else str(ca))


def _same(one: str, other: str) -> bool:
    return bool(one) and one.rstrip("/") == other.rstrip("/")


def _no_redirect() -> Any:
    """A redirect is an answer, not followed: urllib would send the bearer token on to
    whatever host it names (a sign-in proxy's, or plain http://)."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    return NoRedirect()
