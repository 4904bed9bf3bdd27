"""Kubernetes objects as cellops sends them, against the objects a cluster holds: their
identity, the order they are applied in, the hash that decides whether one is sent again,
and the drift between what was sent and what lives. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from cellops.render.hashing import canonical_json, content_hash
from cellops.render.kubernetes import REVISION

Obj = Mapping[str, Any]
AnyObj = TypeVar("AnyObj", bound=Obj)

# Objects others depend on go first (a Deployment's ServiceAccount must exist before its
# pods are admitted; a quota before the pods it limits); the same order Helm and
# gitops-engine use. Prune goes in the reverse order.
_FIRST = (
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "Role",
    "RoleBinding",
    "PersistentVolumeClaim",
    "Service",
)
_LAST = ("HorizontalPodAutoscaler", "PodDisruptionBudget")


@dataclass(frozen=True, order=True)
class ObjectKey:
    api_version: str
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str

    def __str__(self) -> str:
        if not self.name:  # a whole kind: a list, or discovery
            return f"{self.kind} ({self.api_version})" + (
                f" in {self.namespace}" if self.namespace else ""
            )
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    @property
    def text(self) -> str:
        """The form the inventory keeps."""
        return " ".join((self.api_version, self.kind, self.namespace or "-", self.name))

    @classmethod
    def parse(cls, text: str) -> ObjectKey:
        api, kind, namespace, name = text.split(" ")
        return cls(api, kind, "" if namespace == "-" else namespace, name)


def key_of(obj: Obj) -> ObjectKey:
    metadata = obj["metadata"]
    return ObjectKey(
        str(obj["apiVersion"]),
        str(obj["kind"]),
        str(metadata.get("namespace") or ""),
        str(metadata["name"]),
    )


def rank_of(kind: str) -> int:
    """Where objects of `kind` go in apply order: lower first."""
    if kind in _FIRST:
        return _FIRST.index(kind)
    if kind in _LAST:
        return 100 + _LAST.index(kind)
    return 50  # workloads and everything else


def in_apply_order(objects: Iterable[AnyObj]) -> list[AnyObj]:
    """Stable: objects of equal rank keep their rendered order."""
    return sorted(objects, key=lambda obj: rank_of(str(obj["kind"])))


def sent_hash(obj: Obj) -> str:
    """What decides whether an object is sent again. The revision label is left out: it
    changes with every commit, and an object nothing else changed in is not re-sent (the
    label keeps naming the revision that last changed it)."""
    labels = {k: v for k, v in (obj["metadata"].get("labels") or {}).items() if k != REVISION}
    return content_hash(canonical_json({**obj, "metadata": {**obj["metadata"], "labels": labels}}))


def drift(sent: Obj, live: Obj, ignore: Collection[str] = ()) -> list[str]:
    """The fields cellops set on an object whose live value differs, as dotted paths.

    Only the fields cellops sends are compared: what the server or other controllers add
    (defaults, status, their own annotations) is theirs. Lists of named items (containers,
    ports, env) are matched by name, as the API server's merge keys do; resource
    quantities compare by value ("1000m" is "1"). `ignore`: paths the server is known to
    write differently from how they were sent (seen in its answer to the apply).
    """
    out: list[str] = []
    _compare(sent, live, "", out, quantities=False)
    return [p for p in out if p != f"metadata.labels.{REVISION}" and p not in ignore]


# Fields holding resource quantities (container resources, quota, limit ranges): the only
# places where "1000m" and "1" are the same value. Anywhere else ("1.10" in an env var) a
# string is a string.
_QUANTITY_FIELDS = frozenset(
    {"requests", "limits", "hard", "max", "min", "default", "defaultRequest", "capacity"}
)
# Pointer fields the server keeps even when false; missing live means someone removed a
# safeguard. Other false and zero values are dropped by the server (omitempty) and their
# absence is not drift.
_KEPT_WHEN_FALSE = frozenset(
    {"allowPrivilegeEscalation", "automountServiceAccountToken", "privileged"}
)


def _compare(sent: Any, live: Any, path: str, out: list[str], *, quantities: bool) -> None:
    if isinstance(sent, Mapping):
        _compare_fields(sent, live, path, out, quantities=quantities)
    elif isinstance(sent, list):
        _compare_items(sent, live, path, out)
    elif not _same_scalar(sent, live, quantities):
        out.append(path)


def _compare_fields(
    sent: Mapping[str, Any], live: Any, path: str, out: list[str], *, quantities: bool
) -> None:
    if not isinstance(live, Mapping):
        out.append(path or "(object)")
        return
    for key, value in sent.items():
        where = f"{path}.{key}" if path else str(key)
        if key in live:
            _compare(value, live[key], where, out, quantities=quantities or key in _QUANTITY_FIELDS)
        elif _absence_is_drift(key, value):
            out.append(where)


def _absence_is_drift(key: str, value: Any) -> bool:
    """The server drops empty, false and zero values (omitempty), but keeps a few
    safeguards even when false."""
    if isinstance(value, bool):
        return value or key in _KEPT_WHEN_FALSE
    return value not in (None, {}, [], "", 0)


def _compare_items(sent: list[Any], live: Any, path: str, out: list[str]) -> None:
    if not isinstance(live, list):
        out.append(path)
    elif _named(sent) and _named(live):
        by_name = {item["name"]: item for item in live}
        for item in sent:
            where = f"{path}[{item['name']}]"
            if item["name"] in by_name:
                _compare(item, by_name[item["name"]], where, out, quantities=False)
            else:
                out.append(where)
    elif len(sent) != len(live):
        out.append(path)
    else:
        for index, (mine, theirs) in enumerate(zip(sent, live, strict=True)):
            _compare(mine, theirs, f"{path}[{index}]", out, quantities=False)


def _named(items: list[Any]) -> bool:
    return all(isinstance(i, Mapping) and isinstance(i.get("name"), str) for i in items)


def _same_scalar(sent: Any, live: Any, quantities: bool) -> bool:
    if isinstance(sent, bool) or isinstance(live, bool):
        return sent is live  # True is not 1
    if sent == live:
        return True
    if not quantities:
        return False
    mine, theirs = quantity(sent), quantity(live)
    return mine is not None and mine == theirs


# number, then an exponent ("1e3", "5E-3") or a suffix; "1E" alone is 1 exa
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+)|([numkMGTPE]|[KMGTPE]i))?$")
_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource quantity's value ("500m", "1Gi", 2), or None if it is none."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value)
    if match is None:
        return None
    number, exponent, suffix = match.groups()
    try:
        if exponent is not None:
            return Decimal(number) * Decimal(10) ** int(exponent)
        return Decimal(number) * _SUFFIX[suffix or ""]
    except InvalidOperation:
        return None
