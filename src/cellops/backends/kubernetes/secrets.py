"""Secrets in the inventory: their values stay in the cluster.

The inventory keeps each object as it was sent: the reference drift is measured against.
For a Secret that would be its values, in clear, in a file beside the controller. It keeps
instead the Secret without `data` and `stringData`, plus the names of its keys and one
digest of their values (as bytes: `data` decoded, `stringData` merged in, as the API server
does). Drift compares the live values' digest with it; a change of the values in Git
changes the object's sent hash, so it is sent again as any other change.

The digest is of all the values together, keyed by name: it tells a change, and gives
anyone who can read the store (its owner alone) nothing but a way to test a guess of every
value at once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from typing import Any

from cellops.diff.live import drift
from cellops.render.hashing import canonical_json, content_hash

VALUES = "cellops/values"  # in a stored body only: no Kubernetes object has this field
_HIDDEN = ("data", "stringData")


def stored(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """`obj` as the inventory keeps it: a Secret without its values."""
    if not _is_secret(obj):
        return obj
    values = _values(obj)
    kept = {k: v for k, v in obj.items() if k not in _HIDDEN}
    return {**kept, VALUES: {"keys": sorted(values), "digest": _digest(values)}}


def drifted(kept: Mapping[str, Any], live: Mapping[str, Any], ignore: Collection[str]) -> list[str]:
    """`drift` between a stored body and the live object; a Secret's values by digest."""
    summary = kept.get(VALUES)
    paths = drift({k: v for k, v in kept.items() if k not in (VALUES, *_HIDDEN)}, live, ignore)
    if isinstance(summary, Mapping):
        values = _values(live)
        mine = {k: values[k] for k in summary["keys"] if k in values}
        if len(mine) != len(summary["keys"]) or _digest(mine) != summary["digest"]:
            paths.append("data")
    return paths


def _is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def _values(obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's values as bytes, by key, as the API server keeps them."""
    out: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        try:
            out[key] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            out[key] = str(value).encode()  # the server would refuse it; still a change
    for key, value in (obj.get("stringData") or {}).items():
        out[key] = str(value).encode()
    return out


def _digest(values: Mapping[str, bytes]) -> str:
    return content_hash(canonical_json({k: v.hex() for k, v in values.items()}))
