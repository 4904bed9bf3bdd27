"""One Kubernetes API server, through the official client: the handful of calls the
backend makes (server-side apply, get, list by label, delete), with transient failures
retried with backoff and every failure mapped onto `BackendError` at this edge.

Transient (retried, then reported as transient): connection errors, timeouts, 429 and 5xx.
Permanent (reported at once): 400, 401, 403, 404 where an object was required, 409
conflicts, 422 invalid objects. The controller fails the cell with the reason; nothing
retries a request the server has refused on its merits.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from cellops.diff.live import ObjectKey, key_of
from cellops.model.errors import BackendError

FIELD_MANAGER = "cellops"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML; the server takes either
MERGE_PATCH = "application/merge-patch+json"
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
TIMEOUT = (5.0, 15.0)  # connect, read (seconds)
DOWN_FOR = 10.0  # after a server did not answer, fail fast for this long (a breaker)

# Resources of the kinds cellops renders and users commonly bring, so that applying them
# needs no discovery round trip. Anything else is looked up in the server's discovery.
_KNOWN: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ResourceQuota"): ("resourcequotas", True),
    ("v1", "LimitRange"): ("limitranges", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "Pod"): ("pods", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("batch/v1", "CronJob"): ("cronjobs", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
}


@dataclass(frozen=True)
class ClusterRef:
    """How to reach a cell's cluster: a kubeconfig file (None: $KUBECONFIG, then
    ~/.kube/config, then the in-cluster service account) and a context in it."""

    kubeconfig: str | None
    context: str | None

    def __str__(self) -> str:
        where = self.kubeconfig or "the default kubeconfig"
        return f"context {self.context or '(current)'} of {where}"


def connect(ref: ClusterRef) -> k8s_client.ApiClient:
    configuration = k8s_client.Configuration()
    try:
        # $KUBECONFIG is read now, not when the client was imported (it may be a list)
        path = os.path.expanduser(
            ref.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        )
        in_cluster = ref.kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ
        if in_cluster and not any(Path(p).exists() for p in path.split(os.pathsep)):
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config(
                config_file=path, context=ref.context, client_configuration=configuration
            )
    except (ConfigException, OSError, TypeError, ValueError) as exc:
        raise BackendError(f"cannot use {ref}: {exc}") from exc
    configuration.retries = 0  # retries are ours, with backoff, and counted once
    return k8s_client.ApiClient(configuration)


class KubeApi:
    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        name: str,
        *,
        attempts: int = 4,
        backoff: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = api_client
        self.name = name  # names the cluster in errors
        self._attempts = attempts
        self._backoff = backoff
        self._sleep = sleep
        self._clock = clock
        # A server that does not answer stalls every call for its timeout; one cell's
        # failure marks it down for all, so the controller's pass goes on to other clusters.
        self._down_until = 0.0
        self._down_error: BackendError | None = None
        self._resources = dict(_KNOWN)

    @property
    def server(self) -> str:
        """The API server's URL, as the kubeconfig resolved it."""
        return str(self._client.configuration.host)

    def close(self) -> None:
        self._client.close()

    # -- the calls ------------------------------------------------------------------------
    def apply(self, obj: dict[str, Any], force: bool, *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply: create or update `obj`, owning the fields it sets. A dry run
        changes nothing and answers the object as it would then be (`cellops diff`)."""
        key = key_of(obj)
        if key.namespace and not self._resource(key.api_version, key.kind)[1]:
            # validation lets in only kinds known to be namespaced; the server decides
            raise BackendError(
                f"{self.name}: {key}: the server says {key.kind} ({key.api_version}) is"
                " cluster-scoped, and a cell creates objects only inside its namespace:"
                " not applied"
            )
        query = [("fieldManager", FIELD_MANAGER)] + ([("force", "true")] if force else [])
        query += [("dryRun", "All")] if dry_run else []
        answer = self._call("PATCH", self.path(key), key, query=query, body=obj)
        assert answer is not None
        return answer

    def merge(self, key: ObjectKey, patch: dict[str, Any]) -> dict[str, Any] | None:
        """A JSON merge patch (`null` removes a field); None if the object is gone."""
        query = [("fieldManager", FIELD_MANAGER)]
        return self._call(
            "PATCH", self.path(key), key, query=query, body=patch, missing_ok=True, merge=True
        )

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        """The live object, or None if there is none."""
        return self._call("GET", self.path(key), key, missing_ok=True)

    def select(self, api_version: str, kind: str, namespace: str, labels: str) -> list[Any]:
        """Objects of one kind in `namespace` that match the label selector `labels`."""
        key = ObjectKey(api_version, kind, namespace, "")
        answer = self._call(
            "GET", self.path(key), key, query=[("labelSelector", labels)], missing_ok=True
        )
        return list((answer or {}).get("items") or [])

    def delete(self, key: ObjectKey) -> bool:
        """Delete in the background (dependants go too); False if it was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        return self._call("DELETE", self.path(key), key, body=body, missing_ok=True) is not None

    def path(self, key: ObjectKey) -> str:
        plural, namespaced = self._resource(key.api_version, key.kind)
        base = _prefix(key.api_version)
        if namespaced:
            base += f"/namespaces/{quote(key.namespace, safe='')}"
        base += f"/{plural}"
        return f"{base}/{quote(key.name, safe='')}" if key.name else base

    # -- discovery ------------------------------------------------------------------------
    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        found = self._resources.get((api_version, kind))
        if found is None:  # a kind of the group not seen yet: ask (again: a CRD may be new)
            listing = self._call(
                "GET", _prefix(api_version), ObjectKey(api_version, kind, "", ""), missing_ok=True
            )
            for resource in (listing or {}).get("resources") or []:
                if "/" not in resource.get("name", ""):  # not a subresource
                    self._resources[(api_version, resource["kind"])] = (
                        resource["name"],
                        bool(resource.get("namespaced")),
                    )
            found = self._resources.get((api_version, kind))
        if found is None:
            raise BackendError(
                f"{self.name}: the server has no resource {kind} in {api_version}"
                " (is its CustomResourceDefinition installed?)"
            )
        return found

    # -- transport ------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        key: ObjectKey,
        *,
        query: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
        missing_ok: bool = False,
        merge: bool = False,
    ) -> dict[str, Any] | None:
        if self._down_error is not None and self._clock() < self._down_until:
            raise self._down_error
        headers = {"Accept": "application/json"}
        if method == "PATCH":
            headers["Content-Type"] = MERGE_PATCH if merge else APPLY_PATCH
        elif body is not None:
            headers["Content-Type"] = "application/json"
        delay = self._backoff
        # reads are not retried here: whoever reads (a health gate, a drift check) reads
        # again on its next pass anyway
        attempts = self._attempts if method in ("PATCH", "DELETE") else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self._client.call_api(
                    path,
                    method,
                    query_params=query or [],
                    header_params=headers,
                    body=body,
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _request_timeout=TIMEOUT,
                    _return_http_data_only=True,
                )
                data = response.data
                self._down_error = None
                return json.loads(data) if data else {}
            except ApiException as exc:
                if exc.status == 404 and missing_ok:
                    return None
                transient = exc.status in TRANSIENT_STATUS
                hint = _HINTS.get(exc.status, "") if method == "PATCH" and not merge else ""
                error = BackendError(
                    f"{self.name}: {key}: {_describe(exc)}{hint}", transient=transient
                )
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                cause = getattr(exc, "reason", None) or exc  # urllib3 wraps the socket error
                where = self._client.configuration.host
                error = BackendError(
                    f"{self.name}: cannot reach the API server at {where}: {cause}", transient=True
                )
                if attempt == attempts:
                    self._down_until = self._clock() + DOWN_FOR
                    self._down_error = error
            if not error.transient or attempt == attempts:
                raise error
            self._sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


_HINTS = {
    409: " (another field manager owns these fields: set spec.kubernetes.forceConflicts"
    " in cellops.yaml to take them over)",
    403: " (the identity in the kubeconfig may not patch this kind in this namespace)",
}


def _prefix(api_version: str) -> str:
    """The core group lives under /api, every other group under /apis."""
    return f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"


def _describe(exc: ApiException) -> str:
    """The server's own words: its Status object's reason and message."""
    try:
        status = json.loads(exc.body or "{}")
    except ValueError:
        status = {}
    message = status.get("message") or exc.reason or ""
    return f"{exc.status} {status.get('reason') or exc.reason}: {message}".rstrip(": ")
