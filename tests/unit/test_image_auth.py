"""Registry credentials: Docker's config.json, ECR tokens through boto3 (moto stands in
for AWS), and registries' challenges."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from moto import mock_aws

from cellops.images.auth import Credentials, challenge_of

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def test_docker_config_credentials_by_host(tmp_path: Path) -> None:
    token = base64.b64encode(b"me:secret").decode()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"https://r.example.com": {"auth": token}}}))
    credentials = Credentials.from_docker_config(config)
    assert credentials.basic("r.example.com") == f"Basic {token}"
    assert credentials.basic("other.example.com") is None


def test_a_docker_config_that_is_not_json_says_which_file(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{not json")
    with pytest.raises(ValueError, match=f"{config}: not a Docker config.json"):
        Credentials.from_docker_config(config)


def test_no_docker_config_is_no_credentials(tmp_path: Path) -> None:
    assert Credentials.from_docker_config(tmp_path / "none.json").auths == {}


def test_an_ecr_host_gets_its_token_from_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        header = Credentials().basic(ECR)
    assert header is not None and header.startswith("Basic ")
    assert base64.b64decode(header.removeprefix("Basic ")).startswith(b"AWS:")


def test_challenges_are_parsed() -> None:
    header = 'Bearer realm="https://auth.example.com/token",service="r",scope="repository:a:pull"'
    assert challenge_of(header) == (
        "bearer",
        {"realm": "https://auth.example.com/token", "service": "r", "scope": "repository:a:pull"},
    )
    assert challenge_of('Basic realm="registry"') == ("basic", {"realm": "registry"})
