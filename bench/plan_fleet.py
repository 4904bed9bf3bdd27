"""The synthetic fleet of bench/plan.py, written as a real Git repo.

5 regions, one canary cell and ~5% early cells; services with digest-pinned images, their
own ports, probes, resources, region selectors and overrides, contracts and `dependsOn`,
by rules that keep every contract satisfied. `running_cells` says where each service runs
from these rules alone, so the bench can check cellops' plans against it.
No cellops import at module level: the cold measure starts before cellops is imported.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

REGISTRY = "registry.example.com"
REGIONS = {  # region label -> short prefix of cell names
    "us-east-1": "use1",
    "us-west-2": "usw2",
    "eu-west-1": "euw1",
    "eu-central-1": "euc1",
    "ap-southeast-1": "apse1",
}
# Services of one local cell share its address, so each service gets its own ports.
HTTP_PORT_BASE = 10_000
METRICS_PORT_BASE = 20_000
BUMP_KEY = "BENCH_REVISION"
_BUMP_LINE = re.compile(rf'^(\s+{BUMP_KEY}: )"(\d+)"$', re.MULTILINE)


class BenchError(Exception):
    """The benchmark could not run as intended (bad fleet, failed child, wrong plan)."""


@dataclass(frozen=True)
class Size:
    cells: int
    services: int

    @property
    def label(self) -> str:
        return f"{self.cells} × {self.services}"


@dataclass(frozen=True)
class ServiceShape:
    """What one synthetic service looks like; the rules keep every contract satisfied."""

    index: int
    name: str
    provides: bool  # provides <name>/v1 and runs in every cell
    consumes: str | None  # a provider it consumes and depends on
    region: str | None  # runs only in this region (cell selector)
    override_region: str | None  # an override patch for this region
    metrics_port: bool


def service_name(index: int) -> str:
    return f"svc-{index:03d}"


def regions_for(cells: int) -> list[str]:
    return list(REGIONS)[: max(1, min(len(REGIONS), cells))]


def service_shapes(size: Size) -> list[ServiceShape]:
    """Providers (every third) select all cells, so any consumer runs only where one runs."""
    regions = regions_for(size.cells)
    shapes = []
    for i in range(size.services):
        provides = i % 3 == 0
        consumes = service_name(3 * ((i - 1) // 3)) if i % 5 == 1 else None
        region = regions[i % len(regions)] if not provides and i % 4 == 2 else None
        override = regions[(i // 4) % len(regions)] if region is None and i % 4 == 0 else None
        shapes.append(
            ServiceShape(
                index=i,
                name=service_name(i),
                provides=provides,
                consumes=consumes,
                region=region,
                override_region=override,
                metrics_port=i % 2 == 0,
            )
        )
    return shapes


def fleet_yaml(size: Size) -> str:
    first_region = regions_for(size.cells)[0]
    return f"""\
# Synthetic fleet for bench/plan.py: {size.cells} cells, {size.services} services.
apiVersion: cellops.dev/v1
kind: Fleet
metadata:
  name: bench
spec:
  rollout:
    waves:
      - name: canary
        selector: {{ring: canary}}
        bake: 10m
      - name: first-region
        selector: {{region: {first_region}}}
        maxConcurrent: 10
        bake: 5m
      - name: rest
        percent: 100
        maxConcurrent: 50
        bake: 2m
    failureBudget: 1
    onFailure: rollback
    progressDeadline: 10m
  imagePolicy:
    requireDigest: true
    allowedRegistries: [{REGISTRY}]
  defaults:
    replicas: 2
    env:
      LOG_LEVEL: info
"""


def cell_name(index: int, region: str) -> str:
    return f"{REGIONS[region]}-{index:05d}"


def cell_yaml(index: int, size: Size) -> tuple[str, str]:
    """(name, document) of cell `index`; cell 0 is the canary, ~5% more are ring early."""
    regions = regions_for(size.cells)
    region = regions[index % len(regions)]
    name = cell_name(index, region)
    if index == 0:
        ring = "canary"
    elif index <= max(1, size.cells // 20):
        ring = "early"
    else:
        ring = "main"
    text = f"""\
apiVersion: cellops.dev/v1
kind: Cell
metadata:
  name: {name}
  labels:
    region: {region}
    ring: {ring}
  annotations:
    owner: team-{index % 7}
spec:
  backend: local
  capacity:
    maxTenants: {100 + 50 * (index % 5)}
    cpu: "16"
    memory: 32Gi
  state: active
"""
    return name, text


def service_yaml(shape: ServiceShape) -> str:
    name = shape.name
    digest = hashlib.sha256(name.encode()).hexdigest()
    lines = [
        "apiVersion: cellops.dev/v1",
        "kind: Service",
        "metadata:",
        f"  name: {name}",
        "  labels:",
        f"    team: team-{shape.index % 7}",
        "spec:",
    ]
    if shape.region is not None:
        lines += ["  cells:", f"    selector: {{region: {shape.region}}}"]
    lines += [
        f"  image: {REGISTRY}/bench/{name}@sha256:{digest}",
        "  run:",
        "    command: [python3, server.py]",
        "    cwd: app",
        "  ports:",
        f"    - {{name: http, port: {HTTP_PORT_BASE + shape.index}}}",
    ]
    if shape.metrics_port:
        lines.append(f"    - {{name: metrics, port: {METRICS_PORT_BASE + shape.index}}}")
    lines += [
        "  env:",
        f"    SERVICE_NAME: {name}",
        f'    {BUMP_KEY}: "0"',
        "    FEATURE_FLAGS: checkout,search",
        "  probes:",
        "    readiness:",
        "      http: {path: /healthz, port: http}",
        "      periodSeconds: 5",
        "    liveness:",
        "      http: {path: /livez, port: http}",
        "      periodSeconds: 10",
        "      failureThreshold: 3",
        "  resources:",
        "    requests: {cpu: 100m, memory: 128Mi}",
        "    limits: {cpu: 500m, memory: 512Mi}",
    ]
    contracts = []
    if shape.provides:
        contracts.append(f"    provides: [{name}/v1]")
    if shape.consumes is not None:
        contracts.append(f"    consumes: [{shape.consumes}/v1]")
    if contracts:
        lines += ["  contracts:", *contracts]
    if shape.consumes is not None:
        lines.append(f"  dependsOn: [{shape.consumes}]")
    if shape.override_region is not None:
        lines += [
            "  overrides:",
            f"    - cells: {{selector: {{region: {shape.override_region}}}}}",
            "      patch:",
            "        replicas: 4",
            "        env: {REGION_TUNING: high-traffic}",
        ]
    return "\n".join(lines) + "\n"


def app_code(name: str) -> str:
    return f'''\
"""{name}: a tiny HTTP service (synthetic, for the planning benchmark)."""

import http.server
import os


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path in ("/healthz", "/livez") else 404)
        self.end_headers()


http.server.ThreadingHTTPServer(("", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
'''


def write_fleet(root: Path, size: Size) -> None:
    (root / "cells").mkdir(parents=True)
    (root / "cellops.yaml").write_text(fleet_yaml(size))
    for i in range(size.cells):
        name, text = cell_yaml(i, size)
        (root / "cells" / f"{name}.yaml").write_text(text)
    for shape in service_shapes(size):
        folder = root / "services" / shape.name
        (folder / "app").mkdir(parents=True)
        (folder / "service.yaml").write_text(service_yaml(shape))
        (folder / "app" / "server.py").write_text(app_code(shape.name))


def create_fleet_repo(root: Path, size: Size) -> str:
    from cellops.source.git import create_repository

    write_fleet(root, size)
    return create_repository(root, f"synthetic fleet: {size.cells} cells, {size.services} services")


def bump_service(root: Path, name: str) -> None:
    """Change one env value in the service's service.yaml (a new workload hash)."""
    path = root / "services" / name / "service.yaml"
    text = path.read_text()
    match = _BUMP_LINE.search(text)
    if match is None:
        raise BenchError(f"{path}: no {BUMP_KEY} line to bump")
    value = int(match.group(2)) + 1
    path.write_text(text[: match.start()] + f'{match.group(1)}"{value}"' + text[match.end() :])


def running_cells(size: Size) -> dict[str, frozenset[str]]:
    """Where each service runs, from the generator's own rules (not from cellops)."""
    regions = regions_for(size.cells)
    by_region: dict[str, set[str]] = {region: set() for region in regions}
    for i in range(size.cells):
        region = regions[i % len(regions)]
        by_region[region].add(cell_name(i, region))
    everywhere = frozenset().union(*by_region.values())
    return {
        shape.name: everywhere if shape.region is None else frozenset(by_region[shape.region])
        for shape in service_shapes(size)
    }
