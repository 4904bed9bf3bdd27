"""A listener reachable from other machines without TLS is said to be one: `--webhook PORT
--webhook-host 0.0.0.0` (so that GitHub reaches the webhook) now serves the API and the
dashboard too, and their tokens would cross the network in the clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellops.cli.listen import listen_options


@pytest.mark.parametrize(
    ("listen", "webhook_host", "warned"),
    [
        (None, "0.0.0.0", True),
        ("192.0.2.7:8470", "127.0.0.1", True),
        ("ci.example.com:8470", "127.0.0.1", True),
        ("127.0.0.1:8470", "127.0.0.1", False),
        ("localhost:8470", "127.0.0.1", False),
        ("[::1]:8470", "127.0.0.1", False),
    ],
)
def test_plain_http_beyond_loopback_is_warned(
    capsys: pytest.CaptureFixture[str], listen: str | None, webhook_host: str, warned: bool
) -> None:
    webhook = 8470 if listen is None else None
    assert listen_options(listen, webhook, webhook_host, None, None) is not None
    said = capsys.readouterr().err
    assert ("over plain HTTP" in said) is warned, said


def test_with_tls_nothing_is_warned(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-")
    key.write_text("-")
    assert listen_options("0.0.0.0:8470", None, "127.0.0.1", cert, key) is not None
    assert capsys.readouterr().err == ""
