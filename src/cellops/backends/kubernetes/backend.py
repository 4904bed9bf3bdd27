"""Kubernetes cells: a namespace per cell, in a cluster of its own or shared.

apply: render the cell's objects, send each one whose content changed by server-side apply
    (field manager `cellops`), namespace and accounts before workloads, then prune what is
    no longer desired in reverse order. Every object is in the store's inventory before it
    is sent, and leaves it only once the server confirms it is gone. An object that was
    there before cellops first applied it (a takeover) is recorded as adopted, as it was
    found: prune releases it instead of deleting it, and a rollback past its takeover
    restores it as found (see `takeover.py`).
observe: read back the objects of the inventory, assess their health, and compare the
    fields cellops set with what lives (drift). The controller re-applies a drifted cell;
    apply then sends the drifted objects again even though their hash did not change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from cellops import failpoint
from cellops.backends.base import CellObservation
from cellops.backends.kubernetes.api import ClusterRef, KubeApi, connect
from cellops.backends.kubernetes.manifests import Manifests, own_objects
from cellops.backends.kubernetes.observation import service_observations
from cellops.backends.kubernetes.prune import Prune, Records, prune_error
from cellops.backends.kubernetes.secrets import drifted, stored
from cellops.backends.kubernetes.takeover import found_body, made_by_cellops, ours
from cellops.diff.live import ObjectKey, drift, in_apply_order, key_of, rank_of, sent_hash
from cellops.model.errors import BackendError
from cellops.render import DesiredCell, DesiredService
from cellops.render.hashing import canonical_json, content_hash
from cellops.render.kubernetes import (
    CELL,
    MANAGED_BY,
    cell_objects,
)
from cellops.spec.cell import KubernetesBackend
from cellops.store.records import ADOPTED, CREATED, InventoryItem


class KubernetesCells(Prune):
    """Every Kubernetes cell of a fleet, whatever cluster each lives in."""

    def __init__(
        self,
        inventory: Records,
        manifests: Manifests,
        force_conflicts: Callable[[], bool] = lambda: False,
        *,
        connector: Callable[[ClusterRef], KubeApi] | None = None,
        resync: float = 15.0,
        fresh_for: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resync = resync  # a look lists every kind of object the cell holds
        self._inventory = inventory
        self._manifests = manifests
        self._force = force_conflicts
        self._connect = connector or (lambda ref: KubeApi(connect(ref), str(ref)))
        self._apis: dict[ClusterRef, KubeApi] = {}
        self._drifted: dict[str, set[str]] = {}  # cell -> keys the last look found changed
        # (cell, key) -> fields the server wrote differently from how they were sent, as its
        # answer to the apply showed (a normalised value): not drift, or it would never end
        self._normal: dict[tuple[str, str], frozenset[str]] = {}
        self._last: dict[str, CellObservation] = {}  # cell -> the latest observation
        # The controller's loop ticks five times a second and a rollout's gate looks at
        # every cell of the wave each tick: one read of a cell (a list per kind) serves for
        # `fresh_for` seconds, unless cellops changed the cell meanwhile.
        self._read_at: dict[str, float] = {}
        self._fresh_for = fresh_for
        self._clock = clock
        # (cluster, namespace) that cellops just created: nothing in them can be adopted,
        # so a cell's first apply needs no read per object to tell (until its apply ends)
        self._created_ns: set[tuple[str, str]] = set()

    # -- CellBackend ----------------------------------------------------------------------
    def ensure(self, cell: DesiredCell) -> bool:
        """The cell's namespace exists (sent only if the inventory lacks it)."""
        namespace = cell_objects(replace(cell, services={}), "")[0]
        known = self._known(cell.name)
        self._check_home(cell.name, _ref(cell), known.values())
        return self._send(cell.name, _ref(cell), namespace, known)

    def apply(self, cell: DesiredCell, services: Mapping[str, DesiredService]) -> str:
        return self._apply(cell, services, restore=False)

    def roll_back(self, cell: DesiredCell, services: Mapping[str, DesiredService]) -> str:
        """Give the cell its last good state back: as `apply`, but what it adopted since
        (and the good state does not hold) is restored as found, not released."""
        return self._apply(cell, services, restore=True)

    def took_over(self, cell: str) -> bool:
        """Whether the cell holds objects it did not create."""
        return any(item.adopted for item in self._inventory.inventory(cell))

    def hand_back(self, cell: str) -> str:
        """Undo a takeover that was never good: every adopted object restored as found,
        everything cellops created deleted, nothing left in the cell's inventory. Says
        what was done."""
        items = self._inventory.inventory(cell)
        failed = self._prune(cell, items, restore=True)
        if failed:
            raise prune_error([e for _, e in failed])
        adopted = sum(item.adopted for item in items)
        return (
            f"{adopted} object(s) it took over restored as found,"
            f" {len(items) - adopted} it created removed"
        )

    def _apply(
        self, cell: DesiredCell, services: Mapping[str, DesiredService], *, restore: bool
    ) -> str:
        ref = _ref(cell)
        objects = in_apply_order(self._render(cell, services))
        known = self._known(cell.name)
        self._check_home(cell.name, ref, known.values())
        try:
            for obj in objects:
                self._send(cell.name, ref, obj, known)
        finally:
            self._created_ns.clear()
        self._drifted.pop(cell.name, None)
        # what the render no longer has, and all the cell held in a cluster it has left
        here = self._where(ref)
        wanted = {key_of(obj).text for obj in objects}
        gone = []
        for (cluster, key), item in known.items():
            if cluster == here and key in wanted:
                continue
            if _server_of(cluster) == _server_of(here) and key in wanted:
                # the same object, reached through another kubeconfig or context name
                self._inventory.untrack(cell.name, key, cluster)
                continue
            gone.append(item)
        failed = self._prune(cell.name, gone, restore=restore)
        # A cluster the cell left may be down (often why it left): what cannot be deleted
        # there stays listed, outside the cell's state, and is tried again at every apply.
        # What cannot be deleted where the cell lives fails the apply.
        for item, _ in failed:
            if _server_of(item.cluster) != _server_of(here):
                self._inventory.track(cell.name, replace(item, hash=LEFT + _last_applied(item)))
        here_failed = [e for i, e in failed if _server_of(i.cluster) == _server_of(here)]
        if here_failed:
            raise prune_error(here_failed)
        return _document(self._inventory.inventory(cell.name))

    def observe(self, cell: str) -> CellObservation:
        now = self._clock()
        if cell in self._last and now - self._read_at.get(cell, -1e9) < self._fresh_for:
            return self._last[cell]
        self._last[cell] = seen = self._observe(cell)
        self._read_at[cell] = now
        return seen

    def last_seen(self, cell: str) -> CellObservation:
        """The latest observation, without asking the cluster (for views refreshed often)."""
        return self._last.get(cell) or CellObservation(
            cell, reachable=False, reason="not read from its cluster yet"
        )

    def _observe(self, cell: str) -> CellObservation:
        items = [i for i in self._inventory.inventory(cell) if not _left_behind(i.hash)]
        if not items:
            return CellObservation(cell, reachable=False, reason="nothing applied to the cell yet")
        try:
            live = self._read(cell, items)
        except BackendError as exc:
            # what the cell holds is unknown, not changed: nothing to re-apply on this news
            held = _document(items)
            return CellObservation(cell, reachable=False, reason=str(exc), desired=held)
        changed: dict[str, str] = {}  # inventory key -> what changed
        for item in items:
            if not _complete(item.hash):
                changed[item.key] = "apply did not finish"
            elif (item.cluster, item.key) not in live:
                changed[item.key] = "deleted"
            elif paths := drifted(
                json.loads(item.body),
                live[(item.cluster, item.key)],
                self._normal.get((cell, item.key), ()),
            ):
                changed[item.key] = ", ".join(paths)
        self._drifted[cell] = set(changed)
        document = _document(items)
        return CellObservation(
            cell,
            reachable=True,
            services=service_observations(items, live),
            applied=document,
            desired=f"drifted:{document}" if changed else document,
            drifted=tuple(f"{ObjectKey.parse(k)}: {what}" for k, what in changed.items()),
        )

    def delete(self, cell: str) -> None:
        """Prune everything the cell holds, the namespace last."""
        failed = self._prune(cell, self._inventory.inventory(cell))
        if failed:
            raise prune_error([e for _, e in failed])

    def close(self) -> None:
        for api in self._apis.values():
            api.close()
        self._apis.clear()

    # -- sending and pruning --------------------------------------------------------------
    def _render(
        self, cell: DesiredCell, services: Mapping[str, DesiredService]
    ) -> list[dict[str, Any]]:
        own = own_objects(self._manifests, cell, services)  # manifests/ and chart
        revision = max((s.revision for s in services.values()), default="")
        return cell_objects(replace(cell, services=services), revision, own)

    def _send(
        self,
        cell: str,
        ref: ClusterRef,
        obj: dict[str, Any],
        known: dict[tuple[str, str], InventoryItem],
    ) -> bool:
        """Apply `obj` unless the cell already holds it as sent; True if it was sent."""
        key = key_of(obj).text
        digest = sent_hash(obj)
        cluster = self._where(ref)
        held = known.get((cluster, key))
        fresh = held is not None and held.hash == digest
        if fresh and key not in self._drifted.get(cell, set()):
            return False
        body = canonical_json(stored(obj))  # a Secret's values stay in the cluster
        rank = rank_of(str(obj["kind"]))
        # Once cellops has applied an object, the fields it sets are its own: a change by
        # hand (kubectl edit, scale) moves their ownership away, and only a forced apply
        # takes them back. `forceConflicts` decides for objects cellops has not applied yet
        # (taking over what another manager made).
        previous = _last_applied(held)
        origin, found = self._origin(cell, ref, obj, held or _alias(known, cluster, key))
        pending = InventoryItem(key, rank, PENDING + previous, body, cluster, origin, found)
        self._inventory.track(cell, pending)
        answer = self._api(ref).apply(obj, force=bool(previous) or self._force())
        failpoint.hit("apply.k8s")
        self._normal[(cell, key)] = frozenset(drift(obj, answer))
        item = replace(pending, hash=digest)
        self._inventory.track(cell, item)
        self._read_at.pop(cell, None)  # the next look reads the cluster
        known[(cluster, key)] = item
        return True

    def _origin(
        self, cell: str, ref: ClusterRef, obj: dict[str, Any], held: InventoryItem | None
    ) -> tuple[str, str | None]:
        """Whether cellops creates `obj` or adopts the object there (and as it is found):
        known from the inventory, else read before the first apply."""
        if held is not None:
            return held.origin, held.found
        key = key_of(obj)
        here = self._where(ref)
        if (here, key.namespace) in self._created_ns:
            return CREATED, None
        live = self._api(ref).get(key)
        if key.kind == "Namespace" and live is not None and not ours(live, cell):
            # without this cell's labels it is someone else's: taking it would label it
            # as the cell's, and all in it would be the cell's to prune
            raise BackendError(
                f"{key} already exists and is not cell {cell}'s: choose another"
                f" spec.backend.namespace, or hand it over with the labels"
                f" {MANAGED_BY}=cellops and {CELL}={cell}"
            )
        if live is None:
            if key.kind == "Namespace":
                self._created_ns.add((here, key.name))
            return CREATED, None
        if made_by_cellops(live, cell):  # an inventory lost with its store: still its own
            return CREATED, None
        return ADOPTED, canonical_json(found_body(live))

    # -- reading --------------------------------------------------------------------------
    def _read(self, cell: str, items: list[InventoryItem]) -> dict[tuple[str, str], dict[str, Any]]:
        """The live objects of `items` by cluster and key: one list per kind and namespace
        (selected by the cell's labels), one get per cluster-scoped object."""
        live: dict[tuple[str, str], dict[str, Any]] = {}
        groups: dict[tuple[str, str, str, str], list[ObjectKey]] = {}
        for item in items:
            key = ObjectKey.parse(item.key)
            groups.setdefault((item.cluster, key.api_version, key.kind, key.namespace), []).append(
                key
            )
        selector = f"{MANAGED_BY}=cellops,{CELL}={cell}"
        for (cluster, api_version, kind, namespace), keys in groups.items():
            api = self._api_at(cluster)
            if not namespace:
                for key in keys:
                    if (obj := api.get(key)) is not None:
                        live[(cluster, key.text)] = obj
                continue
            for obj in api.select(api_version, kind, namespace, selector):
                found = ObjectKey(api_version, kind, namespace, obj["metadata"]["name"])
                live[(cluster, found.text)] = obj
        return live

    def _known(self, cell: str) -> dict[tuple[str, str], InventoryItem]:
        return {(item.cluster, item.key): item for item in self._inventory.inventory(cell)}

    def _api(self, ref: ClusterRef) -> KubeApi:
        if ref not in self._apis:
            self._apis[ref] = self._connect(ref)
        return self._apis[ref]

    def _where(self, ref: ClusterRef) -> str:
        """A cluster as the inventory records it: how it is reached, and its server."""
        where = {"kubeconfig": ref.kubeconfig, "context": ref.context}
        return canonical_json({**where, "server": self._api(ref).server})

    def _api_at(self, cluster: str) -> KubeApi:
        """The API server objects were applied to; an error if the kubeconfig now sends the
        same context elsewhere (reading or deleting there would be about other objects)."""
        ref = _ref_of(cluster)
        api = self._api(ref)
        if api.server != _server_of(cluster):
            raise BackendError(
                f"{ref} now points at {api.server}, but the objects were applied to"
                f" {_server_of(cluster)}"
            )
        return api

    def _check_home(self, cell: str, ref: ClusterRef, items: Iterable[InventoryItem]) -> None:
        """A cell whose kubeconfig context now resolves to another server did not move:
        someone switched the current context, or edited the kubeconfig. Applying would
        deploy it there and prune it here; refuse instead."""
        here = self._where(ref)
        for item in items:
            if _ref_of(item.cluster) == ref and _server_of(item.cluster) != _server_of(here):
                raise BackendError(
                    f"cell {cell}: {ref} now points at {_server_of(here)}, but the cell's"
                    f" objects are on {_server_of(item.cluster)}: set spec.backend.context"
                    " (and kubeconfig) to the cluster the cell belongs to"
                )


def _ref(cell: DesiredCell) -> ClusterRef:
    backend = cell.spec.backend
    if not isinstance(backend, KubernetesBackend):
        raise BackendError(f"cell {cell.name} is not a Kubernetes cell")
    return ClusterRef(backend.kubeconfig, backend.context)


def _server_of(cluster: str) -> str:
    return str(json.loads(cluster).get("server", ""))


def _ref_of(text: str) -> ClusterRef:
    data = json.loads(text)
    return ClusterRef(data.get("kubeconfig"), data.get("context"))


PENDING = "pending:"  # an inventory hash while a send is in flight (+ the last one applied)
LEFT = "left:"  # ... for an object in a cluster the cell left, whose delete failed


def _left_behind(digest: str | None) -> bool:
    return digest is not None and digest.startswith(LEFT)


def _complete(digest: str | None) -> bool:
    return digest is not None and not digest.startswith(PENDING)


def _alias(
    known: Mapping[tuple[str, str], InventoryItem], cluster: str, key: str
) -> InventoryItem | None:
    """`key` as held on the same server, reached through another kubeconfig or context."""
    return next(
        (i for (c, k), i in known.items() if k == key and _server_of(c) == _server_of(cluster)),
        None,
    )


def _last_applied(held: InventoryItem | None) -> str:
    """The hash of the object as the server last accepted it from cellops; "" if never."""
    if held is None or held.hash is None:
        return ""
    return held.hash.removeprefix(PENDING).removeprefix(LEFT)


def _document(items: Iterable[InventoryItem]) -> str:
    """The cell's state as cellops last sent it: equal to apply's answer when complete."""
    held = [(i.key, i.hash or "") for i in items if not _left_behind(i.hash)]
    return content_hash(canonical_json(sorted(held)))
