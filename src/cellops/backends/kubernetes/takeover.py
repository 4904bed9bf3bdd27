"""Objects a Kubernetes cell took over: there before cellops first applied them.

cellops keeps each one as it was found, and never deletes it unless the fleet says so
(the object, as last applied, annotated `cellops.dev/prune: "true"`). When it leaves the
fleet it is released: its labels and annotations go back as found (cellops' own removed),
its content stays as cellops last applied it. When a rollback goes back past its takeover
it is restored: every field as found, every field added since removed.

Both are JSON merge patches (RFC 7386) computed against the live object, sent by cellops'
field manager. Server-side apply cannot do it: the found body belonged to another manager
(kubectl, Argo CD, Flux), whose ownership cellops cannot give back, and an apply of less
than cellops owns removes fields instead of leaving them. A Secret's values are not kept
by cellops (see `secrets.py`): restoring a Secret leaves its values as last applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cellops.backends.kubernetes.secrets import VALUES, stored
from cellops.render.kubernetes import CELL, MANAGED_BY, REVISION

PRUNE = "cellops.dev/prune"  # "true" on an adopted object: prune may delete it
# what the server writes into an object's metadata: never part of the object as found
SERVER_SET = frozenset(
    {
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)
_NOT_CONTENT = frozenset({"apiVersion", "kind", "metadata", "status", VALUES})
_SECRET_VALUES = frozenset({"data", "stringData"})


def found_body(live: Mapping[str, Any]) -> dict[str, Any]:
    """The object as found, as the inventory keeps it."""
    body = {k: v for k, v in live.items() if k != "status"}
    body["metadata"] = {k: v for k, v in live["metadata"].items() if k not in SERVER_SET}
    return dict(stored(body))


def made_by_cellops(live: Mapping[str, Any], cell: str) -> bool:
    """Whether `live` was applied by cellops for `cell` (it carries the revision label,
    which only cellops sets), as opposed to handed over with the labels by a person."""
    return ours(live, cell) and REVISION in (live["metadata"].get("labels") or {})


def ours(live: Mapping[str, Any], cell: str) -> bool:
    """Whether `live` carries this cell's labels. Prune touches nothing else: an object
    someone else took over (relabelled, or recreated under the same name) is theirs."""
    labels = live.get("metadata", {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY) == "cellops" and labels.get(CELL) == cell)


def prunable(body: Mapping[str, Any]) -> bool:
    """Whether the fleet let prune delete this adopted object (as last applied)."""
    annotations = body.get("metadata", {}).get("annotations") or {}
    return str(annotations.get(PRUNE, "")).lower() == "true"


def restoring(found: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that puts `live` back as it was found."""
    skip = _NOT_CONTENT | (_SECRET_VALUES if live.get("kind") == "Secret" else set())
    want = {k: v for k, v in found.items() if k not in skip}
    have = {k: v for k, v in live.items() if k not in skip}
    patch = merge_patch(have, want)
    if marks := releasing(found, live):
        patch["metadata"] = marks["metadata"]
    return patch


def releasing(found: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that gives `live` its labels and annotations back as found."""
    want, have = (_marks(obj) for obj in (found, live))
    changes = merge_patch(have, want)
    return {"metadata": changes} if changes else {}


def _marks(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    return {k: metadata[k] for k in ("labels", "annotations") if metadata.get(k)}


def merge_patch(have: Mapping[str, Any], want: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that turns `have` into `want` (lists are replaced whole)."""
    patch: dict[str, Any] = dict.fromkeys(have.keys() - want.keys())
    for key, value in want.items():
        old = have.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            if inner := merge_patch(old, value):
                patch[key] = inner
        elif key not in have or old != value:
            patch[key] = value
    return patch
