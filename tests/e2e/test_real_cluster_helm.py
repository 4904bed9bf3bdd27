"""End to end on a real cluster, Helm: podinfo's own chart (shared/realworld), moved into two
Kubernetes cells as a service with neither image nor run. Runs only when
CELLOPS_E2E_KUBECONFIG is set (see test_real_cluster.py for the variables).

The first release renders the chart offline, rolls it out canary first and becomes
available; a release whose chart values name an image that cannot be pulled is rolled back
in the canary alone: the other cell keeps running the first image. Both namespaces are
deleted at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import kubernetes
import pytest

from cellops.store.records import RolloutState
from tests.e2e.test_real_cluster import (
    CONTEXT,
    IMAGE,
    KUBECONFIG,
    TIMEOUT,
    fleet_files,
    rollout_state,
)
from tests.fleetrepo import FleetRepo
from tests.integration.controller_harness import CELLOPS, wait_for
from tests.integration.moved_apps import PODINFO_CHART, PODINFO_VALUES

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not KUBECONFIG, reason="CELLOPS_E2E_KUBECONFIG is not set"),
]


def chart_service(repo: FleetRepo, image: str) -> None:
    """podinfo as its chart, its pods locked down as a restricted namespace wants them."""
    repository, tag = image.rsplit(":", 1)
    if not PODINFO_CHART.is_dir():
        pytest.skip("shared/realworld is not beside this checkout")
    if not (repo.path / "services/podinfo/chart").is_dir():
        shutil.copytree(PODINFO_CHART, repo.path / "services/podinfo/chart")
    repo.write("services/podinfo/values/common.yaml", PODINFO_VALUES)
    repo.write(
        "services/podinfo/service.yaml",
        textwrap.dedent(
            f"""\
            apiVersion: cellops.dev/v1
            kind: Service
            metadata: {{name: podinfo}}
            spec:
              chart:
                valuesFiles: [values/common.yaml]
                values:
                  replicaCount: 2
                  image: {{repository: {repository}, tag: "{tag}"}}
            """
        ),
    )


def test_a_chart_rolls_out_and_a_broken_chart_release_stops_at_the_canary(
    fleet: tuple[FleetRepo, Path, str],
) -> None:
    repo, state, tag = fleet
    fleet_files(repo, tag, IMAGE)
    repo.remove("services/web")
    chart_service(repo, IMAGE)
    first = repo.commit("podinfo's chart, moved as it is")
    args = [CELLOPS, "up", str(repo.path), "--state-dir", str(state), "--no-view"]
    env = {**os.environ, "NO_COLOR": "1"}
    controller = subprocess.Popen([*args, "--poll", "1s"], env=env, stdout=subprocess.DEVNULL)
    try:
        wait_for(
            "the chart's first rollout",
            lambda: rollout_state(state, first) is RolloutState.COMPLETED,
            TIMEOUT,
            interval=1,
        )
        broken = IMAGE.rsplit(":", 1)[0] + ":cellops-e2e-does-not-exist"
        chart_service(repo, broken)
        bad = repo.commit("chart values naming an image that cannot be pulled")
        wait_for(
            "the broken chart release to halt",
            lambda: rollout_state(state, bad) is RolloutState.HALTED,
            TIMEOUT + 300,
            interval=1,
        )
        api = kubernetes.config.new_client_from_config(KUBECONFIG, CONTEXT or None)
        try:
            apps = kubernetes.client.AppsV1Api(api)
            main = apps.read_namespaced_deployment("podinfo", f"cellops-e2e-{tag}-main")
            canary = apps.read_namespaced_deployment("podinfo", f"cellops-e2e-{tag}-canary")
        finally:
            api.close()
        assert main.spec.template.spec.containers[0].image == IMAGE  # never left the canary
        assert canary.spec.template.spec.containers[0].image == IMAGE  # rolled back
    finally:
        controller.terminate()
        controller.wait(timeout=60)
