"""The table of namespaced and cluster-scoped kinds is what the official Kubernetes client
says, derived again here from the client's own generated sources (the OpenAPI paths it
reads each kind at), so the table cannot silently drift from the client it names."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes

from cellops.spec.k8s_scope import CLUSTER_SCOPED, NAMESPACED, group_of

# `read_*` methods: the model a GET returns, then the path it is read at
_READ = re.compile(r'200: "(?P<model>\w+)".*?call_api\(\s*\'(?P<path>[^\']+)\', \'GET\'', re.S)
_PATH = re.compile(
    r"^/apis?/(?:(?P<group>[^/]+)/)?(?P<version>v[^/]+)"
    r"(?P<namespaced>/namespaces/\{namespace\})?/(?P<plural>[a-z0-9]+)/\{name\}$"
)
# the client prefixes a model whose name two groups share (CoreV1Event, EventsV1Event)
_MODEL = re.compile(r"^(?:[A-Z][a-z]+)?V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])")


def derived() -> dict[tuple[str, str], bool]:
    """(group, kind) -> namespaced, from every API module of the installed client."""
    folder = Path(kubernetes.__file__).parent / "client" / "api"
    found: dict[tuple[str, str], bool] = {}
    for module in sorted(folder.glob("*_api.py")):
        for read in _READ.finditer(module.read_text()):
            path = _PATH.match(read["path"])
            if path is None:  # a subresource (/status, /scale) or a list
                continue
            kind = _MODEL.sub("", read["model"])
            found[(path["group"] or "", kind)] = path["namespaced"] is not None
    return found


def test_the_table_is_the_clients() -> None:
    client = derived()
    namespaced = {k for k, v in client.items() if v}
    cluster = {k for k, v in client.items() if not v}
    assert len(client) > 60  # the derivation still finds the client's methods
    assert namespaced == NAMESPACED, sorted(namespaced ^ NAMESPACED)
    assert cluster == CLUSTER_SCOPED, sorted(cluster ^ CLUSTER_SCOPED)


def test_the_kinds_the_deny_list_missed_are_cluster_scoped() -> None:
    for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
        assert ("admissionregistration.k8s.io", kind) in CLUSTER_SCOPED
    for kind in ("FlowSchema", "PriorityLevelConfiguration"):
        assert ("flowcontrol.apiserver.k8s.io", kind) in CLUSTER_SCOPED
    assert ("apps", "Deployment") in NAMESPACED and ("", "Service") in NAMESPACED
    assert NAMESPACED.isdisjoint(CLUSTER_SCOPED)


def test_group_of_an_api_version() -> None:
    assert group_of("v1") == ""
    assert group_of("apps/v1") == "apps"
    assert group_of("cert-manager.io/v1") == "cert-manager.io"
