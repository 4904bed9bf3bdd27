"""Health of Kubernetes objects, over status documents as the API server returns them.

Each fixture under tests/fixtures/k8s-health/ carries its expected health and a fragment
of the expected reason in annotations (cellops.test/expect, cellops.test/reason).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cellops.health import Health
from cellops.health.kubernetes import assess
from tests.fleetrepo import FIXTURES

CASES = sorted((FIXTURES / "k8s-health").glob("*.yaml"))


def test_every_kind_has_cases() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in CASES}
    assert {
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "PersistentVolumeClaim",
        "Service",
    } <= kinds


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_health_of_a_live_object(path: Path) -> None:
    obj = yaml.safe_load(path.read_text())
    annotations = obj["metadata"]["annotations"]
    health, reason = assess(obj)
    assert health is Health(annotations["cellops.test/expect"]), reason
    assert annotations["cellops.test/reason"].lower() in reason.lower()
