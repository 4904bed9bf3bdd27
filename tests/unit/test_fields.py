"""Field syntax: durations, quantities, names, image references."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cellops.spec.fields import format_duration, parse_duration, quantity_value
from cellops.spec.image import parse_image
from cellops.spec.service import Probe


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1m30s", 90.0), ("250ms", 0.25), ("2h", 7200.0), (7, 7.0)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "m", "1d", "", "10"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (90, "1m30s"), (3600, "1h"), (0.25, "250ms")]
)
def test_durations_print_back(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("2", Decimal(2)),
        ("64Mi", Decimal(64 * 2**20)),
        ("1G", Decimal(10**9)),
    ],
)
def test_quantities(text: str, value: Decimal) -> None:
    assert quantity_value(text) == value


def test_probe_defaults_are_kubernetes_defaults() -> None:
    probe = Probe.model_validate({"tcp": {"port": 80}})
    assert (probe.initial_delay_seconds, probe.period_seconds, probe.timeout_seconds) == (0, 10, 1)
    assert (probe.success_threshold, probe.failure_threshold) == (1, 3)


def test_image_references() -> None:
    digest = "sha256:" + "a" * 64
    ref = parse_image(f"registry.example.com:5000/team/app@{digest}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "registry.example.com:5000",
        "team/app",
        None,
        digest,
    )
    assert parse_image("nginx:1.27").registry == "docker.io"
    assert parse_image("nginx:1.27").tag == "1.27"
    assert parse_image("localhost/app").registry == "localhost"


@pytest.mark.parametrize("text", ["app@sha256:abc", "UPPER/case", "registry.example.com/", "a//b"])
def test_bad_image_references(text: str) -> None:
    with pytest.raises(ValueError):
        parse_image(text)
