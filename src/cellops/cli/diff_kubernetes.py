"""`cellops diff` for a Kubernetes cell: each object the fleet gives it, applied as a
server-side apply dry run (the API server merges, defaults and validates it, changes
nothing), against the object as it lives. Fields only the server keeps (status,
managedFields, resourceVersion, uid, timestamps) are left out; a Secret's values are
shown as digests, never in clear. Objects the cell holds but the fleet no longer has are
not listed here: the controller prunes them on its next apply."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from cellops.cli.output import short
from cellops.model.errors import BackendError
from cellops.render import DesiredCell

SERVER_FIELDS = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation")


def kubernetes_report(cell: DesiredCell, repo: Path, revision: str) -> dict[str, Any]:
    from cellops.backends.kubernetes.api import ClusterRef, KubeApi, connect
    from cellops.cli.render import kubernetes_objects
    from cellops.diff.live import key_of
    from cellops.render.kubernetes import namespace_of
    from cellops.spec.cell import KubernetesBackend

    backend = cell.spec.backend
    assert isinstance(backend, KubernetesBackend)
    report: dict[str, Any] = {
        "cell": cell.name,
        "backend": "kubernetes",
        "where": f"{namespace_of(cell)} in context {backend.context or '(current)'}",
        "reachable": True,
        "reason": "",
        "objects": [],
    }
    ref = ClusterRef(backend.kubeconfig, backend.context)
    try:
        api = KubeApi(connect(ref), str(ref))
        try:
            for obj in kubernetes_objects(cell, revision, repo, None):
                key = key_of(obj)
                live = api.get(key)
                after = api.apply(obj, force=True, dry_run=True)
                report["objects"].append(_entry(str(key), live, after, revision))
        finally:
            api.close()
    except BackendError as exc:
        report |= {"reachable": False, "reason": str(exc)}
    report["in_sync"] = report["reachable"] and all(
        o["state"] == "in-sync" for o in report["objects"]
    )
    return report


def _entry(
    name: str, live: dict[str, Any] | None, after: dict[str, Any], revision: str
) -> dict[str, Any]:
    from cellops.cli.diff import unified

    before, wanted = comparable(live), comparable(after)
    state = "missing" if live is None else ("in-sync" if before == wanted else "differs")
    header = (f"{name} (live)", f"{name} (fleet {short(revision)}, server-side dry run)")
    text = "" if state == "in-sync" else unified(before, wanted, *header)
    return {"object": name, "state": state, "fleet": revision, "diff": text}


def comparable(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The object as the fleet could have written it: no server bookkeeping, no status,
    and a Secret's values replaced by digests."""
    if obj is None:
        return {}
    kept = {k: v for k, v in obj.items() if k != "status"}
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_FIELDS}
    annotations = {
        k: v
        for k, v in (metadata.get("annotations") or {}).items()
        if k != "kubectl.kubernetes.io/last-applied-configuration"
    }
    if annotations or "annotations" in metadata:
        metadata["annotations"] = annotations
    kept["metadata"] = metadata
    if obj.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if isinstance(kept.get(field), dict):
                kept[field] = {k: _digest(v) for k, v in kept[field].items()}
    return kept


def _digest(value: object) -> str:
    return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()[:16] + " (hidden)"
