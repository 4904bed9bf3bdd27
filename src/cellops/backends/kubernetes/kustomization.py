"""A kustomization looked over before `kubectl kustomize` runs: everything it names must be
a file or folder inside the service's `manifests/`, and every YAML file kustomize will
parse passes our own YAML checks (no anchors or aliases, bounded nesting and size).

kustomize fetches whatever it cannot find locally: a URL, `github.com/org/repo//path`,
`git@host:repo`. cellops builds manifests offline and from the commit alone, so such an
entry is refused here, naming the kustomization and the entry; `manifests.py` also runs
kubectl with no way to the network, in case something slips past.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cellops.model.errors import CellopsError
from cellops.model.problems import Problem
from cellops.spec.yamldoc import YamlError, parse_yaml, parse_yaml_stream

KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MAX_FILE_BYTES = 4 << 20
# Entries kustomize reads as Kubernetes YAML (files) or as kustomizations (folders).
_PARSED = ("resources", "bases", "components", "crds", "patchesStrategicMerge")
_PARSED_PATHS = ("patches", "patchesJson6902", "replacements")  # lists of {path: ...}
_PLUGINS = ("generators", "transformers", "validators", "configurations")
_NETWORK_ONLY = ("helmCharts", "helmChartInflationGenerator", "helmGlobals")
_URL = re.compile(r"://|^[\w.-]+@[\w.-]+:|^git::|\?ref=|//")  # remote, whatever is on disk
_HOST = re.compile(r"^[\w-]+(\.[\w-]+)+/[^/]+/[^/]")  # github.com/org/repo, unless a folder


class ManifestError(CellopsError):
    """A manifests folder cannot be built into objects. `problem`, when known, says
    exactly which file and line."""

    def __init__(self, message: str, problem: Problem | None = None) -> None:
        super().__init__(message)
        self.problem = problem

    @classmethod
    def at(cls, problem: Problem) -> ManifestError:
        return cls(str(problem), problem)


def kustomization_in(folder: Path) -> Path | None:
    return next((folder / n for n in KUSTOMIZATIONS if (folder / n).is_file()), None)


def check_kustomization(root: Path, label: str) -> None:
    """Raise `ManifestError` for the first entry, in any kustomization reachable from
    `root`, that is remote, outside `root`, missing, or a YAML file we refuse."""
    seen: set[Path] = set()
    pending = [root]
    while pending:
        folder = pending.pop()
        if folder in seen:
            continue
        seen.add(folder)
        kustomization = kustomization_in(folder)
        if kustomization is None:
            raise ManifestError(
                f"{_name(root, label, folder)}/: a folder kustomize is given"
                " must hold a kustomization.yaml"
            )
        name = _name(root, label, kustomization)
        document = read_yaml(kustomization, name, single=True)[0]
        if not isinstance(document, dict):
            raise ManifestError(f"{name}: expected a mapping (a Kustomization)")
        for field, entry in _entries(document, name):
            target = _local(root, folder, name, field, entry)
            if target.is_dir():
                pending.append(target)
            elif field.split("[")[0] not in ("configMapGenerator", "secretGenerator"):
                read_yaml(target, _name(root, label, target), single=False)


def read_yaml(path: Path, name: str, single: bool) -> list[object]:
    """The documents of one YAML file, size checked before it is read."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ManifestError(
            f"{name}: is {size} bytes: manifests are limited to {MAX_FILE_BYTES} bytes a file"
        )
    try:
        if single:
            return [parse_yaml(name, path.read_bytes()).data]
        return parse_yaml_stream(name, path.read_bytes(), MAX_FILE_BYTES)
    except YamlError as exc:
        raise ManifestError.at(exc.problem) from exc


def as_objects(label: str, documents: list[Any]) -> list[dict[str, Any]]:
    """The documents of one file (or build) as Kubernetes objects; empty ones skipped."""
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


def _entries(document: dict[str, object], name: str) -> Iterator[tuple[str, str]]:
    """(field, path) of each file or folder the kustomization names."""
    for field in _NETWORK_ONLY:
        if document.get(field):
            raise ManifestError(
                f"{name}: {field}: Helm charts are fetched and rendered at build time:"
                " give the service a spec.chart instead (its chart/ folder, or an OCI"
                " chart pinned by digest)"
            )
    for field in (*_PARSED, *_PLUGINS):
        for index, entry in enumerate(_list(document.get(field))):
            if isinstance(entry, str) and "\n" not in entry:  # else an inline patch
                yield f"{field}[{index}]", entry
    for field in _PARSED_PATHS:
        for index, entry in enumerate(_list(document.get(field))):
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                yield f"{field}[{index}].path", entry["path"]
    for field in ("configMapGenerator", "secretGenerator"):
        for index, generator in enumerate(_list(document.get(field))):
            if isinstance(generator, dict):
                yield from _generator_files(f"{field}[{index}]", generator)
    openapi = document.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield "openapi.path", openapi["path"]


def _generator_files(field: str, generator: dict[str, object]) -> Iterator[tuple[str, str]]:
    for key in ("files", "envs"):
        for index, entry in enumerate(_list(generator.get(key))):
            if isinstance(entry, str):  # `key=path` names the key in the ConfigMap
                yield f"{field}.{key}[{index}]", entry.split("=", 1)[-1]
    env = generator.get("env")
    if isinstance(env, str):
        yield f"{field}.env", env


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _local(root: Path, folder: Path, name: str, field: str, entry: str) -> Path:
    """The file or folder `entry` names, which must exist inside `root`."""
    target = Path(os.path.normpath(folder / entry))
    real = Path(os.path.realpath(target))
    if _URL.search(entry) or (_HOST.search(entry) and not real.exists()):
        raise ManifestError(
            f"{name}: {field}: {entry!r} is remote: manifests are built offline from the"
            " commit alone; copy what it names into manifests/"
        )
    if not real.is_relative_to(os.path.realpath(root)):
        raise ManifestError(f"{name}: {field}: {entry!r} is outside manifests/")
    if not real.exists():
        raise ManifestError(
            f"{name}: {field}: {entry!r} is not a file or folder in manifests/ (kustomize"
            " would try to fetch it from the network: remote resources are refused)"
        )
    return target


def _name(root: Path, label: str, path: Path) -> str:
    relative = path.relative_to(root).as_posix()
    return label if relative == "." else f"{label}/{relative}"
