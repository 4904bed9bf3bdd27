"""A service's own `manifests/` folder -> Kubernetes objects: plain YAML files, or a
kustomization built with `kubectl kustomize` (offline; a clear error when kubectl is
missing). What the objects then become in a cell is decided in `render.kubernetes`.

Hostile input is refused before it costs anything: YAML anchors and aliases, deep nesting
and oversized files (in what we parse and in what kustomize would), links leading out of
the folder, and remote kustomize resources (`kustomization.py`). kubectl runs with its
proxies pointed at a closed local port and Git's transports disabled, so nothing it
might still try to fetch leaves the machine."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cellops.backends.kubernetes.helm import chart_values, pull_chart, render_chart
from cellops.backends.kubernetes.kustomization import (
    KUSTOMIZATIONS,
    ManifestError,
    as_objects,
    check_kustomization,
    kustomization_in,
    read_yaml,
)
from cellops.render import DesiredCell, DesiredService
from cellops.render.hashing import canonical_json
from cellops.render.kubernetes import namespace_of
from cellops.render.own import OwnTrees
from cellops.spec.chart import Chart
from cellops.spec.yamldoc import YamlError, parse_yaml_stream

__all__ = [
    "BUILD_TIMEOUT",
    "KUSTOMIZATIONS",
    "ManifestCache",
    "ManifestError",
    "Manifests",
    "build",
    "own_objects",
]

BUILD_TIMEOUT = 60.0
MAX_OUTPUT_BYTES = 64 << 20
_KLOG = re.compile(r"^[EWI]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] ", re.MULTILINE)  # kubectl's log prefix


def build(folder: Path, label: str) -> list[dict[str, Any]]:
    """The objects of `folder`; `label` names it in errors (services/<name>/manifests)."""
    if kustomization_in(folder) is not None:
        check_kustomization(folder, label)
        output = _kustomize(folder, label).encode()
        try:
            built = parse_yaml_stream(f"{label} (kustomize output)", output, MAX_OUTPUT_BYTES)
        except YamlError as exc:
            raise ManifestError.at(exc.problem) from exc
        return as_objects(label, built)
    objects: list[dict[str, Any]] = []
    root = os.path.realpath(folder)
    for path in _yaml_files(folder):
        name = f"{label}/{path.relative_to(folder).as_posix()}"
        if not os.path.realpath(path).startswith(root + os.sep):
            raise ManifestError(f"{name}: a symlink leading outside manifests/")
        if path.is_file():
            objects += as_objects(name, read_yaml(path, name, single=False))
    return objects


def _yaml_files(folder: Path) -> list[Path]:
    """The YAML files under `folder`, sorted, but a nested kustomization.yaml (a base kept
    beside plain files is read as its plain files); links to folders are not entered, and
    the walk is iterative (an exported tree may nest deeper than the recursion limit)."""
    found, pending = [], [folder]
    while pending:
        for entry in os.scandir(pending.pop()):
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
            elif entry.name in KUSTOMIZATIONS:
                continue  # kustomize's own configuration (of a base), not an object
            elif entry.name.endswith((".yaml", ".yml")):
                found.append(Path(entry.path))
    return sorted(found)


def _kustomize(folder: Path, label: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ManifestError(
            f"{label} has a kustomization: building it needs kubectl (with kustomize) on PATH"
        )
    command = [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsRootOnly"]
    try:
        with _offline() as env:
            done = subprocess.run(
                [*command, str(folder)],
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
                env=env,
            )
    except subprocess.TimeoutExpired as exc:
        raise ManifestError(f"{label}: kubectl kustomize took over {BUILD_TIMEOUT:.0f}s") from exc
    if done.returncode != 0:
        reason = _KLOG.sub("", done.stderr.strip())
        raise ManifestError(f"{label}: kubectl kustomize failed: {reason}")
    return done.stdout


@contextmanager
def _offline() -> Iterator[dict[str, str]]:
    """An environment in which kubectl cannot reach the network: every proxy is a local
    port bound but never listening (connections to it are refused), Git may use no
    transport, and nothing may prompt."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
        env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
        for name in ("http_proxy", "https_proxy", "all_proxy"):
            env[name] = env[name.upper()] = proxy
        env.update(GIT_ALLOW_PROTOCOL="cellops-offline", GIT_TERMINAL_PROMPT="0")
        yield env


class ManifestCache:
    """A service's own objects, built from materialised trees: each tree (`manifests/`,
    `chart/`, `values/`) is exported once under `root/<name>-<tree id>/<name>/` and
    manifests are built once per tree; a chart is rendered once per tree, values and
    namespace. The same tree in another revision costs nothing.

    `export(tree id, target)` writes a tree: from Git for a commit, from the folder for
    `--path`, through the same rules, so both build from the same files."""

    def __init__(self, root: Path, export: Callable[[str, Path], None]) -> None:
        self._root = root
        self._export = export
        self._built: dict[str, list[dict[str, Any]]] = {}
        self._charts: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, service: str, tree_id: str) -> list[dict[str, Any]]:
        return self.objects(service, tree_id)

    def objects(self, service: str, tree_id: str) -> list[dict[str, Any]]:
        """The objects of a service's `manifests/` tree."""
        if tree_id not in self._built:
            folder = self.materialised(tree_id, "manifests")
            self._built[tree_id] = build(folder, f"services/{service}/manifests")
        return self._built[tree_id]

    def materialised(self, tree_id: str, name: str) -> Path:
        folder = self._root / f"{name}-{tree_id}" / name
        if not folder.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)
            self._export(tree_id, folder)
        return folder

    def own(self, cell: DesiredCell, service: DesiredService) -> list[dict[str, Any]]:
        """Everything the service brings of its own to `cell`: manifests, then chart."""
        trees = OwnTrees.parse(service.code)
        objects = self.objects(service.name, trees.manifests) if trees.manifests else []
        chart = service.spec.chart
        if chart is not None:
            objects = [*objects, *self._chart(service.name, chart, trees, namespace_of(cell))]
        return objects

    def _chart(
        self, name: str, chart: Chart, trees: OwnTrees, namespace: str
    ) -> list[dict[str, Any]]:
        source = trees.chart if chart.local else chart.digest
        key = canonical_json([source, trees.values, chart.model_dump(mode="json"), namespace])
        if key not in self._charts:
            label = f"services/{name}/chart" if chart.local else f"{chart.oci}:{chart.version}"
            folders = {
                folder: self.materialised(tree, folder)
                for folder, tree in (("chart", trees.chart), ("values", trees.values))
                if tree is not None
            }
            if chart.local and "chart" not in folders:
                raise ManifestError(f"services/{name}/chart/: does not exist: expected a chart")
            where = (
                folders["chart"] if chart.local else pull_chart(chart, self._root / "oci", label)
            )
            values = chart_values(chart, folders, f"services/{name}")
            release = chart.release_name or name
            self._charts[key] = render_chart(
                where, values, release=release, namespace=namespace, label=label
            )
        return self._charts[key]


Manifests = Callable[[str, str], list[dict[str, Any]]]  # (service, manifests tree) -> objects


def own_objects(
    source: Manifests, cell: DesiredCell, services: Mapping[str, DesiredService]
) -> dict[str, list[dict[str, Any]]]:
    """Each service's own objects in `cell`. `source`: a `ManifestCache`, or any function
    building a manifests tree (which cannot render charts)."""
    if isinstance(source, ManifestCache):
        return {
            name: source.own(cell, service)
            for name, service in services.items()
            if service.code is not None or service.spec.chart is not None
        }
    built = {}
    for name, service in services.items():
        if service.spec.chart is not None:
            raise ManifestError(f"services/{name}: its chart cannot be rendered here")
        tree = OwnTrees.parse(service.code).manifests
        if tree is not None:
            built[name] = source(name, tree)
    return built
