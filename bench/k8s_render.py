"""Kubernetes benchmark: render + validate cell objects, kubectl kustomize, API requests.

On a synthetic fleet of N Kubernetes cells x M services (a real Git repo in a temp dir):
1. `cell_objects` for every cell, then `check_kubernetes` as the compiler runs it;
2. `kubectl kustomize` of per-cell overlays on a sample of cells (their output equals
   cellops' objects but for env order and the pod template's hash annotation);
3. 100 cells on tests/kubeserver.py (kmock, 127.0.0.1) applied by `KubernetesCells`, then
   re-applied after a commit that changes one env value of one service: the target is one
   PATCH per cell, of that service's Deployment, and no other request.

Run: .venv/bin/python bench/k8s_render.py [--cells N --services M] [--repeat R] [--quick]
--quick: 30 cells x 5 services, 3 cells kustomized, 10 cells on kmock, once (`make test`).
Exit 1 if the fleet does not validate, kustomize's output differs in size, or a request
count is not the expected one; never on speed. Without kubectl the kustomize part is skipped.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.kubeserver import KubeServer  # noqa: E402

from cellops.backends.kubernetes import validation  # noqa: E402
from cellops.backends.kubernetes.backend import KubernetesCells  # noqa: E402
from cellops.backends.kubernetes.manifests import ManifestCache  # noqa: E402
from cellops.backends.kubernetes.validation import check_kubernetes  # noqa: E402
from cellops.pipeline import Compiler  # noqa: E402
from cellops.render.kubernetes import CELL, SERVICE, cell_objects  # noqa: E402
from cellops.source.git import GitSource, commit_all, create_repository, export_tree  # noqa: E402
from cellops.store.sqlite import SqliteStore  # noqa: E402

REGISTRY = "registry.example.com"
REGIONS = {"us-east-1": "use1", "us-west-2": "usw2", "eu-west-1": "euw1", "eu-central-1": "euc1"}
TIMEOUT = 60.0
Obj = dict[str, Any]

FLEET = f"""\
apiVersion: cellops.dev/v1
kind: Fleet
metadata: {{name: k8s-bench}}
spec:
  rollout: {{waves: [{{name: all, percent: 100, maxConcurrent: 50, bake: 1m}}]}}
  imagePolicy: {{requireDigest: true, allowedRegistries: [{REGISTRY}]}}
  kubernetes: {{version: "1.32"}}
  defaults: {{replicas: 2, env: {{LOG_LEVEL: info}}}}
"""
CELL_DOC = """\
apiVersion: cellops.dev/v1
kind: Cell
metadata: {{name: {name}, labels: {{region: {region}}}}}
spec: {{backend: {{type: kubernetes{where}}}, capacity: {{cpu: "16", memory: 32Gi}}}}
"""
SERVICE_DOC = """\
apiVersion: cellops.dev/v1
kind: Service
metadata: {{name: {name}}}
spec:
  image: {image}
  ports: [{ports}]
  env: {{SERVICE_NAME: {name}, BENCH_REVISION: "{bump}", FEATURE_FLAGS: "checkout,search"}}
  probes:
    readiness: {{http: {{path: /healthz, port: http}}, periodSeconds: 5}}
    liveness: {{http: {{path: /livez, port: http}}, periodSeconds: 10, failureThreshold: 3}}
  resources: {{requests: {{cpu: 100m, memory: 128Mi}}, limits: {{cpu: 500m, memory: 512Mi}}}}
"""
OVERRIDE = "  overrides: [{{cells: {{selector: {{region: {region}}}}}, patch: {patch}}}]\n"
KUSTOMIZATION = """\
namespace: {namespace}
resources: [../../base, namespace.yaml]
labels: [{{pairs: {{cellops.dev/cell: {cell}}}, includeSelectors: true}}]
"""
ENV_PATCH = (  # a strategic merge patch: what the env override does
    "{{apiVersion: apps/v1, kind: Deployment, metadata: {{name: {name}}}, spec: {{replicas: 4,"
    " template: {{spec: {{containers: [{{name: {name}, env: [{{name: TUNING, value: high}}]}}]"
    "}}}}}}}}"
)


class BenchError(Exception):
    """The benchmark could not run as intended."""


# --------------------------------------------------------------------------- fleet repo
def svc(i: int) -> str:
    return f"svc-{i:03d}"


def region_of(cell: int) -> str:
    return list(REGIONS)[cell % len(REGIONS)]


def cell_name(i: int) -> str:
    return f"{REGIONS[region_of(i)]}-{i:05d}"


def image(name: str, region: str = "") -> str:
    return f"{REGISTRY}/bench/{name}@sha256:{hashlib.sha256((name + region).encode()).hexdigest()}"


def override_of(i: int) -> tuple[str, str]:
    """(kind, region) of service i's override: env + replicas, image, or none ("", "")."""
    region = list(REGIONS)[(i // 4) % len(REGIONS)]
    return ("env", region) if i % 4 == 0 else ("image", region) if i % 4 == 2 else ("", "")


def write_service(root: Path, i: int, bump: int = 0) -> None:
    ports = "{name: http, port: 8080}" + (", {name: metrics, port: 9090}" if i % 2 == 0 else "")
    text = SERVICE_DOC.format(name=svc(i), image=image(svc(i)), ports=ports, bump=bump)
    kind, region = override_of(i)
    if kind == "env":
        text += OVERRIDE.format(region=region, patch="{replicas: 4, env: {TUNING: high}}")
    elif kind == "image":
        text += OVERRIDE.format(region=region, patch=f"{{image: '{image(svc(i), region)}'}}")
    (root / "services" / svc(i)).mkdir(parents=True, exist_ok=True)
    (root / "services" / svc(i) / "service.yaml").write_text(text)


def write_fleet(root: Path, cells: int, services: int, kubeconfig: Path | None) -> str:
    (root / "cells").mkdir(parents=True)
    (root / "cellops.yaml").write_text(FLEET)
    where = f", kubeconfig: {kubeconfig}, context: kmock" if kubeconfig else ""
    for i in range(cells):
        text = CELL_DOC.format(name=cell_name(i), region=region_of(i), where=where)
        (root / "cells" / f"{cell_name(i)}.yaml").write_text(text)
    for i in range(services):
        write_service(root, i)
    return create_repository(root, f"k8s bench fleet: {cells} cells, {services} services")


def timed(fn: Callable[..., Any], *args: Any, collect: bool = True) -> tuple[float, Any]:
    if not collect:  # without the cyclic garbage collector
        gc.disable()
    started = time.perf_counter()
    try:
        out = fn(*args)
    finally:
        gc.enable()
    return time.perf_counter() - started, out


# --------------------------------------------------------------------------- 1 + 2
@dataclass
class RenderResult:
    sample: int
    render_s: list[float] = field(default_factory=list)
    validate_s: list[float] = field(default_factory=list)
    no_gc_s: list[float] = field(default_factory=list)  # render with the collector off
    kustomize_s: list[float] = field(default_factory=list)  # per sampled cell and repeat
    objects: int = 0
    distinct: int = 0
    kubectl_start_s: float = 0.0


def render_and_kustomize(cells: int, services: int, repeat: int, sample: int) -> RenderResult:
    with tempfile.TemporaryDirectory(prefix="cellops-k8s-bench-") as tmp:
        repo = Path(tmp) / "fleet"
        head = write_fleet(repo, cells, services, None)
        compiler = Compiler(GitSource(repo))
        revision, desired = compiler.revision(head), compiler.desired(head)
        manifests = ManifestCache(Path(tmp) / "manifests", partial(export_tree, repo)).objects
        print(f"{cells} × {services}: fleet written; measuring...", file=sys.stderr)

        def render_all() -> dict[str, list[Obj]]:
            return {n: cell_objects(c, revision.id, {}) for n, c in desired.cells.items()}

        result = RenderResult(min(sample, cells))
        for _ in range(repeat):
            rendered: dict[str, list[Obj]] = {}  # the previous one is garbage now
            seconds, rendered = timed(render_all)
            result.render_s.append(seconds)
            result.no_gc_s.append(timed(render_all, collect=False)[0])
            # cold: every schema loaded again; wrapped to count the objects validated
            validation._validator.cache_clear()
            with mock.patch.object(validation, "_validate", wraps=validation._validate) as calls:
                seconds, problems = timed(check_kubernetes, revision, desired, manifests)
            result.distinct = calls.call_count
            if problems:
                raise BenchError("check_kubernetes: " + "; ".join(map(str, problems[:5])))
            result.validate_s.append(seconds)
        result.objects = sum(len(objects) for objects in rendered.values())
        if shutil.which("kubectl") is None:
            return result  # the comparison is skipped; the table says so
        names = list(desired.cells)
        chosen = [names[i * len(names) // result.sample] for i in range(result.sample)]
        overlays = write_kustomize(Path(tmp) / "kustomize", rendered, chosen, services)
        for _ in range(repeat):
            for name, overlay in overlays.items():
                seconds, out = timed(kubectl, "kustomize", str(overlay))
                built = [d for d in yaml.safe_load_all(out) if d]
                if len(built) != len(rendered[name]):
                    raise BenchError(f"{overlay}: {len(built)} objects, not {len(rendered[name])}")
                result.kustomize_s.append(seconds)
        starts = [timed(kubectl, "version", "--client")[0] for _ in range(5)]
        result.kubectl_start_s = statistics.median(starts)
    return result


def kubectl(*args: str) -> str:
    command = ["kubectl", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{shlex.join(command)}: over {TIMEOUT:g} s") from exc
    if done.returncode != 0:
        raise BenchError(f"{shlex.join(command)} failed: {done.stderr.strip()}")
    return done.stdout


def strip_cell(value: Any) -> Any:
    """An object without what makes it one cell's: the cell label anywhere, the namespace."""
    if isinstance(value, dict):
        return {k: strip_cell(v) for k, v in value.items() if k not in (CELL, "namespace")}
    return [strip_cell(v) for v in value] if isinstance(value, list) else value


def write_kustomize(
    root: Path, rendered: dict[str, list[Obj]], chosen: list[str], services: int
) -> dict[str, Path]:
    """The base: each object as cellops renders it in a cell where no override applies."""
    base: dict[tuple[str, str], Obj] = {}
    for name, objects in rendered.items():
        for obj in objects:
            service = obj["metadata"]["labels"].get(SERVICE)
            overridden = service and override_of(int(service[4:]))[1] == region_of(int(name[-5:]))
            if obj["kind"] != "Namespace" and not overridden:
                base.setdefault((obj["kind"], obj["metadata"]["name"]), strip_cell(obj))
    (root / "base").mkdir(parents=True)
    (root / "base" / "objects.yaml").write_text(yaml.safe_dump_all(list(base.values())))
    (root / "base" / "kustomization.yaml").write_text("resources: [objects.yaml]\n")
    overlays = {}
    for name in chosen:
        region = region_of(int(name[-5:]))
        mine = [(override_of(i), svc(i)) for i in range(services)]
        images = [
            {"name": image(s).split("@")[0], "digest": image(s, region).split("@")[1]}
            for kind, s in mine
            if kind == ("image", region)
        ]
        patches = [{"patch": ENV_PATCH.format(name=s)} for k, s in mine if k == ("env", region)]
        namespace = next(o for o in rendered[name] if o["kind"] == "Namespace")
        overlays[name] = overlay = root / "cells" / name
        overlay.mkdir(parents=True)
        (overlay / "namespace.yaml").write_text(yaml.safe_dump(strip_cell(namespace)))
        text = KUSTOMIZATION.format(namespace=namespace["metadata"]["name"], cell=name)
        text += yaml.safe_dump({"images": images, "patches": patches})
        (overlay / "kustomization.yaml").write_text(text)
    return overlays


# --------------------------------------------------------------------------- 3
@dataclass
class ApiStep:
    service: str
    seconds: float
    expected: int  # cells, each with one PATCH of the service's Deployment
    counts: Counter[str] = field(default_factory=Counter)  # target, PATCH, GET, LIST, ...
    cells: set[str] = field(default_factory=set)  # whose Deployment of `service` was patched
    unexpected: list[str] = field(default_factory=list)  # every request but target PATCHes

    @property
    def ok(self) -> bool:
        return self.counts == Counter(target=self.expected) and len(self.cells) == self.expected

    def count(self, sent: list[Any]) -> None:
        target = re.compile(rf"^/apis/apps/v1/namespaces/([^/]+)/deployments/{self.service}$")
        for s in sent:
            if s.method == "PATCH" and (match := target.match(s.path)):
                self.counts["target"] += 1
                self.cells.add(match.group(1))
                continue
            self.unexpected.append(f"{s.method} {s.path}")
            kind = "LIST" if s.method == "GET" and "labelSelector" in s.query else s.method
            self.counts[kind if kind in ("PATCH", "GET", "LIST", "DELETE") else "other"] += 1


def api_requests(cells: int, services: int, repeat: int) -> list[ApiStep]:
    """The first apply of every cell, then a re-apply after each of `repeat` commits."""
    with tempfile.TemporaryDirectory(prefix="cellops-k8s-api-") as tmp, KubeServer() as server:
        repo = Path(tmp) / "fleet"
        head = write_fleet(repo, cells, services, server.kubeconfig(Path(tmp) / "kubeconfig"))
        compiler = Compiler(GitSource(repo))
        store = SqliteStore(Path(tmp) / "cellops.db")
        built = ManifestCache(Path(tmp) / "manifests", partial(export_tree, repo))
        backend = KubernetesCells(store, built.objects)
        steps = []
        try:
            for step in range(repeat + 1):
                index = (step * 7) % services
                if step:
                    write_service(repo, index, bump=step)
                    head = commit_all(repo, f"{svc(index)}: bump")
                desired = compiler.desired(head)
                print(f"{cells} cells on kmock: apply {step + 1}/{repeat + 1}", file=sys.stderr)
                server.clear()
                started = time.perf_counter()
                for cell in desired.cells.values():
                    backend.apply(cell, cell.services)
                steps.append(ApiStep(svc(index), time.perf_counter() - started, cells))
                steps[-1].count(server.sent())
        finally:
            backend.close()
            store.close()
    return steps


# --------------------------------------------------------------------------- report
def secs(value: float) -> str:
    return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.2f} ms"


def kustomize_rows(r: RenderResult, per_cell: float) -> list[str]:
    if not r.kustomize_s:
        return ["render per cell: kubectl kustomize|skipped|kubectl is not on PATH"]
    kustomize = statistics.median(r.kustomize_s)
    return [
        f"render per cell: kubectl kustomize|{secs(kustomize)}|EXTRAPOLATED from a sample:",
        f"||{r.sample} cells × {len(r.kustomize_s) // r.sample} runs, a process each,",
        f"||process start included (kubectl alone: {secs(r.kubectl_start_s)})",
        f"kubectl kustomize / cellops, per cell|{kustomize / per_cell:,.0f}×|",
    ]


def table(cells: int, r: RenderResult, api: list[ApiStep]) -> str:
    render, validate = statistics.median(r.render_s), statistics.median(r.validate_s)
    per_cell = render / cells
    first, steps = api[0], api[1:]
    on = first.expected  # cells on kmock
    mark = "✓ PASS" if all(s.ok for s in steps) else "✗ FAIL"
    median = statistics.median(s.seconds for s in steps)
    kinds = ("GET", "LIST", "DELETE", "other")
    n, d, patches = r.objects, r.distinct, first.counts["PATCH"] + first.counts["target"]
    step_times = ", ".join(f"{s.service}: {secs(s.seconds)}" for s in steps)
    step_patches = ", ".join(str(s.counts["target"] + s.counts["PATCH"]) for s in steps)
    others = ", ".join("/".join(str(s.counts[k]) for k in kinds) for s in steps)
    rows = [
        row.split("|")
        for row in (
            "measure|median|detail",
            f"render: cell_objects, every cell|{secs(render)}|{n} objects, {n / render:,.0f}/s",
            f"  the same, garbage collector off|{secs(statistics.median(r.no_gc_s))}|",
            f"validate: check_kubernetes|{secs(validate)}|{n / validate:,.0f} objects/s (with its",
            f"||own render); {d} distinct shapes validated",
            f"render per cell: cellops|{secs(per_cell)}|render time / cells, in process",
            *kustomize_rows(r, per_cell),
            f"first apply, {on} cells|{secs(first.seconds)}|{patches} PATCH",
            f"re-apply of {on} cells after a 1-service commit|{secs(median)}|{step_times}",
            f"  PATCH per commit|{step_patches}|target {on}, a Deployment per cell  {mark}",
            f"  {'/'.join(kinds)} per commit|{others}|target 0/0/0/0  {mark}",
        )
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    lines += [f"unexpected after {s.service}: {u}" for s in steps for u in s.unexpected[:10]]
    return "\n".join(line.rstrip() for line in lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cells", type=int, default=1000, help="cells (default 1000)")
    parser.add_argument("--services", type=int, default=20, help="services (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (default 3)")
    parser.add_argument("--sample", type=int, default=20, help="cells kustomized (default 20)")
    parser.add_argument("--api-cells", type=int, default=100, help="cells on kmock (default 100)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 × 5, once")
    args = parser.parse_args(argv)
    if args.quick:
        args.cells, args.services, args.repeat, args.sample, args.api_cells = 30, 5, 1, 3, 10
    sizes = (args.cells, args.services, args.repeat, args.sample, args.api_cells)
    if min(sizes) < 1 or args.services > 999:
        parser.error("expected at least 1 of each, and at most 999 services")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        found = shutil.which("kubectl") is not None
        kubectl_version = "; ".join(kubectl("version", "--client").splitlines()) if found else "-"
        rendered = render_and_kustomize(args.cells, args.services, args.repeat, args.sample)
        api = api_requests(args.api_cells, args.services, args.repeat)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print(
        f"\nmachine: nproc={cpus}, {platform.python_implementation()} {platform.python_version()},"
        f" {platform.system()} {platform.machine()}; kubectl {kubectl_version}\ncommand:"
        f" {shlex.join(['.venv/bin/python', 'bench/k8s_render.py', *sys.argv[1:]])}\n"
        f"fleet: {args.cells} cells × {args.services} services; API part: {args.api_cells} cells ×"
        f" {args.services} services on tests/kubeserver.py (kmock); median of {args.repeat} runs\n"
    )
    print(table(args.cells, rendered, api), flush=True)
    return 0 if all(step.ok for step in api[1:]) else 1


if __name__ == "__main__":
    sys.exit(main())
