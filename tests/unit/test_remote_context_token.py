"""A context's token goes only to that context's server: `--server` (or CELLOPS_SERVER)
naming another controller must not be sent the current context's token."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cellops.cli.remote import selected

PROD = "https://prod.example:8470"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "current-context": "prod",
                "contexts": [{"name": "prod", "server": PROD, "token": "cellops_prodsecret"}],
            }
        )
    )
    monkeypatch.setenv("CELLOPS_CONFIG", str(path))
    monkeypatch.delenv("CELLOPS_TOKEN", raising=False)
    return path


def test_another_server_is_not_sent_the_current_contexts_token(config: Path) -> None:
    with pytest.raises(SystemExit):
        remote = selected("https://attacker.example:8470")
        assert remote is None or remote.token != "cellops_prodsecret"


def test_another_server_gets_cellops_token(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLOPS_TOKEN", "cellops_given")
    remote = selected("https://other.example:8470")
    assert remote is not None and remote.token == "cellops_given"


def test_the_contexts_own_server_gets_its_token(config: Path) -> None:
    for server in (None, PROD, PROD + "/"):
        remote = selected(server)
        assert remote is not None and remote.token == "cellops_prodsecret"
