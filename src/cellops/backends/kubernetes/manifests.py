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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cellops.backends.kubernetes.kustomization import (
    KUSTOMIZATIONS,
    ManifestError,
    check_kustomization,
    kustomization_in,
    read_yaml,
)
from cellops.spec.yamldoc import YamlError, parse_yaml_stream

__all__ = ["BUILD_TIMEOUT", "KUSTOMIZATIONS", "ManifestCache", "ManifestError", "build"]

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
        return _check(label, built)
    objects: list[dict[str, Any]] = []
    root = os.path.realpath(folder)
    for path in _yaml_files(folder):
        name = f"{label}/{path.relative_to(folder).as_posix()}"
        if not os.path.realpath(path).startswith(root + os.sep):
            raise ManifestError(f"{name}: a symlink leading outside manifests/")
        if path.is_file():
            objects += _check(name, read_yaml(path, name, single=False))
    return objects


def _yaml_files(folder: Path) -> list[Path]:
    """The YAML files under `folder`, sorted; links to folders are not entered, and the
    walk is iterative (an exported tree may nest deeper than the recursion limit)."""
    found, pending = [], [folder]
    while pending:
        for entry in os.scandir(pending.pop()):
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
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
