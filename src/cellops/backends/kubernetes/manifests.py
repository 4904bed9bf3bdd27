"""A service's own `manifests/` folder -> Kubernetes objects: plain YAML files, or a
kustomization built with `kubectl kustomize` (offline; a clear error when kubectl is
missing). What the objects then become in a cell is decided in `render.kubernetes`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cellops.model.errors import CellopsError

KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
BUILD_TIMEOUT = 60.0


class ManifestError(CellopsError):
    """A manifests folder cannot be built into objects."""


def build(folder: Path, label: str) -> list[dict[str, Any]]:
    """The objects of `folder`; `label` names it in errors (services/<name>/manifests)."""
    if any((folder / name).is_file() for name in KUSTOMIZATIONS):
        return _check(label, list(yaml.safe_load_all(_kustomize(folder, label))))
    documents: list[Any] = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml")):
        try:
            documents += list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as exc:
            raise ManifestError(f"{label}/{path.relative_to(folder)}: invalid YAML: {exc}") from exc
    return _check(label, documents)


def _kustomize(folder: Path, label: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ManifestError(
            f"{label} has a kustomization: building it needs kubectl (with kustomize) on PATH"
        )
    try:
        done = subprocess.run(
            [kubectl, "kustomize", str(folder)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ManifestError(f"{label}: kubectl kustomize took over {BUILD_TIMEOUT:.0f}s") from exc
    if done.returncode != 0:
        raise ManifestError(f"{label}: kubectl kustomize failed: {done.stderr.strip()}")
    return done.stdout


def _check(label: str, documents: list[Any]) -> list[dict[str, Any]]:
    objects = []
    for index, document in enumerate(d for d in documents if d is not None):
        if (
            not isinstance(document, dict)
            or not all(k in document for k in ("apiVersion", "kind", "metadata"))
            or "name" not in (document.get("metadata") or {})
        ):
            raise ManifestError(
                f"{label}: document {index + 1} is not a Kubernetes object: expected"
                " apiVersion, kind and metadata.name"
            )
        objects.append(document)
    return objects


class ManifestCache:
    """Built manifests by Git tree id: a tree is exported (once) under `root` and built
    (once); the same tree in another revision costs nothing."""

    def __init__(self, root: Path, export: Callable[[str, Path], None]) -> None:
        self._root = root
        self._export = export
        self._built: dict[str, list[dict[str, Any]]] = {}

    def objects(self, service: str, tree_id: str) -> list[dict[str, Any]]:
        if tree_id not in self._built:
            folder = self._root / tree_id
            if not folder.is_dir():
                folder.parent.mkdir(parents=True, exist_ok=True)
                self._export(tree_id, folder)
            self._built[tree_id] = build(folder, f"services/{service}/manifests")
        return self._built[tree_id]
