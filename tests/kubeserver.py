"""A Kubernetes API server for tests: kmock's emulator on 127.0.0.1, with the shims it
needs to stand in for a cluster, and a stand-in for the Deployment controller.

kmock serves real HTTP, parses Kubernetes paths, keeps objects, serves get, delete and
discovery. What it lacks, and this module adds:
- the namespaces collection (kmock cannot parse `/api/v1/namespaces[/name]`);
- server-side apply (`PATCH` with `application/apply-patch+yaml` creates a missing object,
  or with `dryRun=All` only answers what the object would be;
  an existing one is merged naively: dicts merge, lists are replaced, a removed key
  stays. Real SSA also removes fields its manager stopped setting, and tracks owners);
- label selectors on lists, and empty lists for kinds with no objects yet;
- conflicts, coarsely: after a change by another manager (a merge patch, as `kubectl
  edit` sends), an apply without `force=true` is refused with 409 (a real server refuses
  it only if the applied fields differ from that manager's values);
- uid, resourceVersion, and `generation`, bumped when the spec changes;
- a Deployment "controller": after `rollout_delay` it writes the status of a finished
  rollout, or of a failed one (`ProgressDeadlineExceeded`) when the image is in `failing`.

Every request is logged (method, path, query, content type, body) for assertions.
Runs in a thread with its own event loop; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.test_utils
import aiohttp.web
import attrs
import kmock

APPLY = "application/apply-patch+yaml"
NAMESPACES = re.compile(r"^/api/v1/namespaces(?:/([^/]+))?$")


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code}
    return aiohttp.web.json_response({**body, "reason": reason, "message": message}, status=code)


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    """As this server applies: dicts merge, anything else is replaced."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


@attrs.define(kw_only=True)
class ClusterEmulator(kmock.KubernetesEmulator):
    sent: list[Sent] = attrs.field(factory=list)
    namespaces: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    failing: set[str] = attrs.field(factory=set)  # images whose rollouts fail
    rollout_delay: float = 0.3
    refuse: list[tuple[str, str, int]] = attrs.field(factory=list)  # method, path re, status
    edited: set[tuple[Any, ...]] = attrs.field(factory=set)  # objects changed by hand
    _version: int = 0
    _first_seen: dict[tuple[Any, ...], float] = attrs.field(factory=dict)

    # -- the wire -------------------------------------------------------------------------
    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        payload = await raw.read()
        content_type = raw.headers.get("Content-Type", "")
        body = json.loads(payload) if payload else None
        self.sent.append(Sent(raw.method, raw.path, dict(raw.query), content_type, body))
        for index, (method, pattern, code) in enumerate(self.refuse):
            if raw.method == method and re.search(pattern, raw.path):
                del self.refuse[index]
                return _status(code, "Refused", f"refused by the test ({code})")
        if (match := NAMESPACES.match(raw.path)) is not None:
            return self._namespace(raw.method, match.group(1), dict(raw.query), body)
        return await super().__call__(raw)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        content_type = request.headers.get("Content-Type", "")
        if request.method == kmock.method.PATCH and content_type.startswith(APPLY):
            async with self._lock:
                return aiohttp.web.json_response(self._apply(request))
        if request.method == kmock.method.PATCH and request.resource is not None:
            # another manager (kubectl edit) now owns what it changed
            key = (request.resource, request.namespace, request.name)
            self.edited.add(key)
            before = self._spec(key)
            response = await super()._handle(request)
            async with self._lock:  # a changed spec is a new generation, as on a server
                if (after := self._spec(key)) is not None and after != before:
                    changed = self._objects[key]
                    generation = int(changed.raw["metadata"].get("generation", 1)) + 1
                    changed.patch({"metadata": {"generation": generation}})
            return response
        listing = request.resource is not None and request.resource.plural  # not discovery
        if request.action == kmock.action.LIST and listing:
            async with self._lock:
                items = self._select(request, request.params.get("labelSelector", ""))
            return aiohttp.web.json_response({"kind": "List", "apiVersion": "v1", "items": items})
        return await super()._handle(request)

    # -- shims ----------------------------------------------------------------------------
    def _spec(self, key: tuple[Any, ...]) -> Any:
        if key not in self._objects or self._objects[key].deleted:
            return None
        return copy.deepcopy(self._objects[key].raw.get("spec"))

    def _apply(self, request: kmock.Request) -> dict[str, Any]:
        assert request.resource is not None and request.name is not None
        key = (request.resource, request.namespace, request.name)
        if request.namespace is not None and request.namespace not in self.namespaces:
            raise kmock.KubernetesNotFoundError(
                message=f'namespaces "{request.namespace}" not found'
            )
        if key in self.edited:
            if request.params.get("force") != "true":
                raise kmock.KubernetesError(
                    status=409,
                    reason="Conflict",
                    message="Apply failed with 1 conflict: conflict with"
                    ' "kubectl-edit" using apps/v1: .spec',
                )
            self.edited.discard(key)  # forced: the fields are the applier's again
        data = copy.deepcopy(request.data)
        if request.params.get("dryRun") == "All":  # what it would be; nothing is kept
            return self._dry_run(key, data)
        if key not in self._objects or self._objects[key].deleted:
            data["metadata"].update(self._created(generation=1))
            self._objects[key] = data
        else:
            current = self._objects[key]
            before = copy.deepcopy(current.raw.get("spec"))
            current.patch(data)
            meta: dict[str, Any] = {"resourceVersion": self._next_version()}
            if current.raw.get("spec") != before:
                meta["generation"] = int(current.raw["metadata"].get("generation", 1)) + 1
            current.patch({"metadata": meta})
        return dict(self._objects[key].raw)

    def _dry_run(self, key: tuple[Any, ...], data: dict[str, Any]) -> dict[str, Any]:
        if key not in self._objects or self._objects[key].deleted:
            return data
        merged = copy.deepcopy(dict(self._objects[key].raw))
        _merge(merged, data)
        return merged

    def _select(self, request: kmock.Request, selector: str) -> list[dict[str, Any]]:
        return [
            dict(obj.raw)
            for (resource, namespace, _), obj in self._objects.items()
            if resource == request.resource
            and not obj.deleted
            and (request.namespace is None or namespace == request.namespace)
            and _matches(obj.raw.get("metadata", {}).get("labels") or {}, selector)
        ]

    def _namespace(
        self, method: str, name: str | None, query: dict[str, str], body: Any
    ) -> aiohttp.web.StreamResponse:
        if name is None and method == "GET":
            selector = query.get("labelSelector", "")
            items = [
                n for n in self.namespaces.values() if _matches(n["metadata"]["labels"], selector)
            ]
            return aiohttp.web.json_response({"kind": "NamespaceList", "items": items})
        if name is None and method == "POST":
            name = body["metadata"]["name"]
            if name in self.namespaces:
                return _status(409, "AlreadyExists", f'namespaces "{name}" already exists')
            method = "PATCH"
        assert name is not None
        if method == "PATCH":
            current = self.namespaces.get(name)
            if current is None:
                current = {**copy.deepcopy(body), "status": {"phase": "Active"}}
                current["metadata"] = {**current["metadata"], **self._created(generation=None)}
                current["metadata"].setdefault("labels", {})
                self.namespaces[name] = current
            else:  # labels and annotations merged; null removes one, as a merge patch does
                meta = current["metadata"]
                for field in ("labels", "annotations"):
                    if field in meta or body["metadata"].get(field):
                        merged = {**meta.get(field, {}), **(body["metadata"].get(field) or {})}
                        meta[field] = {k: v for k, v in merged.items() if v is not None}
            return aiohttp.web.json_response(current)
        if name not in self.namespaces:
            return _status(404, "NotFound", f'namespaces "{name}" not found')
        if method == "DELETE":  # and everything in it, as the namespace controller would
            gone = self.namespaces.pop(name)
            for (_, namespace, _), obj in list(self._objects.items()):
                if namespace == name and not obj.deleted:
                    obj.delete()
            return aiohttp.web.json_response(gone)
        return aiohttp.web.json_response(self.namespaces[name])

    def _created(self, generation: int | None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "uid": str(uuid.uuid4()),
            "resourceVersion": self._next_version(),
            "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if generation is not None:
            meta["generation"] = generation
        return meta

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    # -- the Deployment controller --------------------------------------------------------
    async def run_controllers(self) -> None:
        while True:
            async with self._lock:
                self._step_deployments(time.monotonic())
            await asyncio.sleep(0.05)

    def _step_deployments(self, now: float) -> None:
        for (resource, namespace, name), obj in list(self._objects.items()):
            if resource.plural != "deployments" or obj.deleted:
                continue
            raw = obj.raw
            generation = raw["metadata"].get("generation", 1)
            if (raw.get("status") or {}).get("observedGeneration") == generation:
                continue
            first = self._first_seen.setdefault((namespace, name, generation), now)
            if now - first < self.rollout_delay:
                continue
            want = int(raw["spec"].get("replicas", 1))
            image = raw["spec"]["template"]["spec"]["containers"][0]["image"]
            if image in self.failing:
                progressing = {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": f'ReplicaSet of "{name}" has timed out progressing.',
                }
                counts = {"updatedReplicas": 1, "readyReplicas": want, "availableReplicas": want}
                counts["replicas"] = want + 1
            else:
                progressing = {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet of "{name}" has successfully progressed.',
                }
                names = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
                counts = dict.fromkeys(names, want)
            status = {"observedGeneration": generation, **counts, "conditions": [progressing]}
            obj.patch({"status": status})

    # -- for tests ------------------------------------------------------------------------
    def live(self, api: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        group, _, version = api.rpartition("/")
        for (resource, ns, obj_name), obj in self._objects.items():
            if (resource.group or "", resource.version, resource.plural) == (
                group,
                version,
                plural,
            ) and (ns, obj_name) == (namespace, name):
                return None if obj.deleted else dict(obj.raw)
        return None


class KubeServer:
    """The emulator on 127.0.0.1 in a thread; `kubeconfig(path)` writes a config for it."""

    def __init__(self) -> None:
        self.cluster = ClusterEmulator()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.url = ""

    def __enter__(self) -> KubeServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the kmock server did not start within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop serving (again: a test may stop it early to play an outage)."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        # aiohttp's server directly: kmock.Server also installs a process-wide DNS
        # interceptor for aiohttp clients, which two servers in two threads cannot share
        async with self.cluster:
            server = aiohttp.test_utils.RawTestServer(self.cluster, host="127.0.0.1")
            await server.start_server()
            try:
                self.url = str(server.make_url("")).rstrip("/")
                controllers = asyncio.create_task(self.cluster.run_controllers())
                self._ready.set()
                await self._stop.wait()
                controllers.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await controllers
            finally:
                await server.close()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(cluster, *args)` on the server's loop, under its lock."""

        async def locked() -> Any:
            async with self.cluster._lock:
                return fn(self.cluster, *args)

        return asyncio.run_coroutine_threadsafe(locked(), self._loop).result(10)

    def sent(self, method: str | None = None, path: str = "") -> list[Sent]:
        return [
            s
            for s in list(self.cluster.sent)
            if (method is None or s.method == method) and re.search(path, s.path)
        ]

    def clear(self) -> None:
        self.cluster.sent.clear()

    def kubeconfig(self, path: Path, context: str = "kmock") -> Path:
        return write_kubeconfig(path, {context: self.url})


def write_kubeconfig(path: Path, contexts: dict[str, str]) -> Path:
    """A kubeconfig with a context (and a cluster) per entry of `contexts`: name -> URL."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": url}} for n, url in contexts.items()],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "tester"}} for n in contexts],
        "current-context": next(iter(contexts)),
    }
    path.write_text(json.dumps(config))
    return path


@contextlib.contextmanager
def kube_server() -> Iterator[KubeServer]:
    with KubeServer() as server:
        yield server
