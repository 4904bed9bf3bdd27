"""RBAC inside a cell: a RoleBinding grants within the cell's namespace, to the cell's own
accounts (and to people), never to another cell's.

Adopting a service's manifests moves a RoleBinding into the cell's namespace; its
ServiceAccount subjects that named the namespace the binding was written for (or none)
move with it, as kustomize's `namespace:` moves them. A subject left in any other
namespace is refused at validation, as is a binding to a ClusterRole the fleet does not
allow: by default `view` and `edit`, which grant only within the binding's namespace and
cannot grant further (`edit` may not create Roles or RoleBindings). `admin` can (it
manages the namespace's RBAC), and `cluster-admin` bound in a namespace is full control
of it, the quota and limits cellops sets included: a fleet that accepts that lists them
in `spec.kubernetes.allowedClusterRoles`. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

Obj = dict[str, Any]
Violation = tuple[str, str]
RBAC = "rbac.authorization.k8s.io"
_EVERYONE = ("system:authenticated", "system:unauthenticated", "system:serviceaccounts")


def is_role_binding(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "RoleBinding" and str(obj.get("apiVersion", "")).startswith(
        f"{RBAC}/"
    )


def move_subjects(obj: Obj, source: str | None, namespace: str) -> Obj:
    """A RoleBinding whose ServiceAccount subjects in `source` (the namespace it was
    written for) or in none now name `namespace`. Other objects are returned as they are."""
    subjects = obj.get("subjects")
    if not is_role_binding(obj) or not isinstance(subjects, list):
        return obj
    moved = [
        {**subject, "namespace": namespace}
        if isinstance(subject, dict)
        and subject.get("kind") == "ServiceAccount"
        and subject.get("namespace") in (None, "", source)
        else subject
        for subject in subjects
    ]
    return {**obj, "subjects": moved}


def rbac_violations(
    obj: Mapping[str, Any], namespace: str, allowed: Collection[str]
) -> list[Violation]:
    """Where a RoleBinding in the cell's `namespace` grants outside it ([] otherwise)."""
    if not is_role_binding(obj):
        return []
    found = []
    role = obj.get("roleRef") or {}
    if role.get("kind") == "ClusterRole" and role.get("name") not in allowed:
        choices = ", ".join(allowed) or "none"
        found.append(
            (
                "roleRef.name",
                f"grants ClusterRole {role.get('name')!r}, which the fleet does not allow in a"
                f" cell: expected a Role of the cell's own, or a ClusterRole among {choices}"
                " (cellops.yaml spec.kubernetes.allowedClusterRoles)",
            )
        )
    for index, subject in enumerate(obj.get("subjects") or ()):
        problem = _outside(subject if isinstance(subject, Mapping) else {}, namespace)
        if problem is not None:
            found.append((f"subjects[{index}]", problem))
    return found


def _outside(subject: Mapping[str, Any], namespace: str) -> str | None:
    kind, name = subject.get("kind"), str(subject.get("name", ""))
    if kind == "ServiceAccount" and subject.get("namespace") != namespace:
        return (
            f"ServiceAccount {subject.get('namespace')}/{name} is outside the cell: a binding"
            f" in a cell grants only to the cell's own accounts (namespace {namespace}, or"
            " the namespace the binding was written for)"
        )
    if kind == "User" and name.startswith("system:serviceaccount:"):
        owner = name.split(":")[2] if name.count(":") >= 3 else ""
        if owner != namespace:
            return (
                f"user {name!r} is an account of another namespace: the cell's are in {namespace}"
            )
    if kind == "Group" and (
        name in _EVERYONE
        or (
            name.startswith("system:serviceaccounts:")
            and name != f"system:serviceaccounts:{namespace}"
        )
    ):
        return f"group {name!r} holds accounts outside the cell: it may not be granted in a cell"
    return None
