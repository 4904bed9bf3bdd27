"""What a service brings of its own to a Kubernetes cell, beyond cellops' generated
objects: its `manifests/` and its Helm chart, and how the service's version is read
back from them when it has no image (a manifests-only service).

A service's `code` (see `DesiredService`) names the trees its own objects are built
from. Without a chart it is the `manifests/` tree id, as it always was; with one it
lists each tree (`manifests=<id>,chart=<id>,values=<id>`, `-` for none), so a change to
any of them is a new version of the service. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cellops.spec.revision import Revision

Obj = dict[str, Any]
HASH = "cellops.dev/hash"
TREES = ("manifests", "chart", "values")
# Kinds whose status says when a rollout is done: a manifests-only service's version is
# stamped on them, and is running once each of them is healthy with that stamp.
WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})


@dataclass(frozen=True)
class OwnTrees:
    """The tree ids a service's own objects are built from in Kubernetes cells."""

    manifests: str | None = None
    chart: str | None = None
    values: str | None = None

    @classmethod
    def of(cls, revision: Revision, service: str) -> OwnTrees:
        trees = revision.trees
        return cls(*(trees.get(f"services/{service}/{name}") for name in TREES))

    @classmethod
    def parse(cls, code: str | None) -> OwnTrees:
        if code is None or "=" not in code:
            return cls(manifests=code)
        parts = dict(part.split("=", 1) for part in code.split(","))
        return cls(*(None if parts.get(n, "-") == "-" else parts[n] for n in TREES))

    def code(self) -> str | None:
        if self.chart is None and self.values is None:
            return self.manifests
        return ",".join(f"{name}={getattr(self, name) or '-'}" for name in TREES)


def stamp(objects: list[Obj], version: str) -> list[Obj]:
    """A manifests-only service's objects, its workloads annotated with its version (on
    their metadata, not their pod templates: a new version that leaves a workload's pods
    alone restarts nothing). With no workload, every object carries it."""
    chosen = [o for o in objects if o.get("kind") in WORKLOADS] or objects
    marked = {id(o) for o in chosen}
    out = []
    for obj in objects:
        metadata = obj["metadata"]
        if id(obj) in marked:
            annotations = {**(metadata.get("annotations") or {}), HASH: version}
            metadata = {**metadata, "annotations": annotations}
        out.append({**obj, "metadata": metadata})
    return out


def workload_replicas(obj: Mapping[str, Any]) -> tuple[int, int]:
    """(ready, desired) pods of a live workload; (0, 0) for anything else."""
    kind, spec, status = obj.get("kind"), obj.get("spec") or {}, obj.get("status") or {}
    if kind == "DaemonSet":
        return int(status.get("numberReady") or 0), int(status.get("desiredNumberScheduled") or 0)
    if kind in WORKLOADS:
        return int(status.get("readyReplicas") or 0), int(spec.get("replicas", 1))
    return 0, 0
