"""A fleet that a team moved two existing apps into, unchanged: podinfo's Helm chart
(shared/realworld) and a multi-deployment kustomize app (tests/fixtures/apps/shop),
each a service with neither image nor run, in two Kubernetes cells."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fleetrepo import FIXTURES, FleetRepo

ROOT = Path(__file__).parents[2]
PODINFO_CHART = ROOT.parent / "shared" / "realworld" / "podinfo" / "chart"
STAND_IN_CHART = FIXTURES / "charts" / "stand-in"  # for tests that need any chart
SHOP = FIXTURES / "apps" / "shop"
SHOP_DEPLOYMENTS = 12

FLEET = """\
apiVersion: cellops.dev/v1
kind: Fleet
metadata: {name: moved}
spec:
  rollout:
    waves:
      - {name: canary, selector: {ring: canary}}
      - {name: rest, percent: 100}
  imagePolicy: {requireDigest: false}  # the apps' images are tagged, as they were
  kubernetes: {version: "1.32"}
"""
CELL = """\
apiVersion: cellops.dev/v1
kind: Cell
metadata: {{name: {name}, labels: {{region: {region}, ring: {ring}}}}}
spec:
  backend: {{type: kubernetes, context: kmock}}
  capacity: {{maxTenants: 10, cpu: "64", memory: 64Gi}}
"""
SHOP_SERVICE = """\
apiVersion: cellops.dev/v1
kind: Service
metadata: {name: shop}
spec: {}
"""
# podinfo's optional parts on, its pods locked down as a restricted namespace wants them;
# the cells of region eu show their own message.
PODINFO_SERVICE = """\
apiVersion: cellops.dev/v1
kind: Service
metadata: {name: podinfo}
spec:
  chart:
    valuesFiles: [values/common.yaml]
    values:
      replicaCount: 3
      hpa: {enabled: true, cpu: 80, maxReplicas: 6}
      ingress: {enabled: true}
      podDisruptionBudget: {maxUnavailable: 1}
      serviceAccount: {enabled: true}
      hooks: {preInstall: {job: {enabled: true}}}
  overrides:
    - cells: {selector: {region: eu}}
      patch: {chart: {values: {ui: {message: hello from eu}}}}
"""
PODINFO_VALUES = """\
podSecurityContext:
  runAsNonRoot: true
  runAsUser: 10001
  seccompProfile: {type: RuntimeDefault}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
ui: {message: hello}
"""


def moved_fleet(path: Path, chart: Path = PODINFO_CHART) -> FleetRepo:
    """The fleet, committed: cells canary (eu) and us-1 (us); services podinfo (its chart:
    podinfo's own, or `chart`), shop."""
    if not chart.is_dir():
        pytest.skip("shared/realworld is not beside this checkout")
    repo = FleetRepo(path, None)
    repo.write("cellops.yaml", FLEET)
    repo.write("cells/canary.yaml", CELL.format(name="canary", region="eu", ring="canary"))
    repo.write("cells/us-1.yaml", CELL.format(name="us-1", region="us", ring="main"))
    shutil.copytree(chart, path / "services/podinfo/chart")
    repo.write("services/podinfo/service.yaml", PODINFO_SERVICE)
    repo.write("services/podinfo/values/common.yaml", PODINFO_VALUES)
    shutil.copytree(SHOP, path / "services/shop/manifests")
    repo.write("services/shop/service.yaml", SHOP_SERVICE)
    repo.commit("podinfo's chart and the shop app, moved as they are")
    return repo
