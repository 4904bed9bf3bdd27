"""The one place that picks concrete adapters: where state lives, which store, which
backend serves which cell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cellops.backends.base import CellBackend, CellObservation
from cellops.backends.kubernetes.backend import KubernetesCells
from cellops.backends.kubernetes.manifests import ManifestCache
from cellops.backends.kubernetes.validation import kubernetes_check
from cellops.backends.local.backend import LocalCells
from cellops.backends.local.podman import podman_check
from cellops.controller.exposure import ExposureGate, ExposureTracker
from cellops.controller.reconcile import CURRENT, Reconciler, Settings
from cellops.images.gate import WaveGate, image_check, key_reader
from cellops.images.ledger import VerdictLedger
from cellops.images.registry import Registry
from cellops.images.tags import PinTags
from cellops.images.verify import ImageVerifier
from cellops.model.errors import StoreError
from cellops.pipeline import Compiler
from cellops.plan.planner import wave_caps
from cellops.render import DesiredCell
from cellops.router.publisher import TABLE_FILE, TablePublisher
from cellops.source.git import GitSource, export_tree
from cellops.source.remote import MirroredSource, is_url
from cellops.spec.cell import LocalBackend
from cellops.store.database import DB, private_folder
from cellops.store.lost import open_store
from cellops.store.sqlite import SqliteStore


@dataclass
class Wiring:
    source: GitSource
    compiler: Compiler
    store: SqliteStore
    local: LocalCells
    kubernetes: KubernetesCells
    reconciler: Reconciler
    store_path: Path
    images: VerdictLedger

    def close(self) -> None:
        self.images.close()
        self.local.close()
        self.kubernetes.close()
        self.store.close()

    def observe(self, cell: str) -> CellObservation:
        return observe_cell(self.store, self.local, self.kubernetes, cell)

    def peek(self, cell: str) -> CellObservation:
        """For a view refreshed twice a second: Kubernetes cells as last read by the
        controller (reading 100 clusters' objects twice a second would be a load test)."""
        if self.store.holds_objects(cell):
            return self.kubernetes.last_seen(cell)
        return self.local.observe(cell)


def observe_cell(
    store: SqliteStore, local: LocalCells, kubernetes: KubernetesCells, cell: str
) -> CellObservation:
    """A cell by name, without its spec: Kubernetes cells are the ones with an inventory."""
    return kubernetes.observe(cell) if store.holds_objects(cell) else local.observe(cell)


class Observer:
    """Reads cells for `status` from a state folder, with no controller running."""

    def __init__(self, store: SqliteStore, state_dir: Path) -> None:
        self._store = store
        self._local = LocalCells(state_dir, lambda tree, target: None)
        self._kubernetes = KubernetesCells(store, lambda service, tree: [])

    def observe(self, cell: str) -> CellObservation:
        return observe_cell(self._store, self._local, self._kubernetes, cell)

    def close(self) -> None:
        self._kubernetes.close()


def backend_for(
    local: LocalCells, kubernetes: KubernetesCells
) -> Callable[[DesiredCell], CellBackend]:
    def choose(cell: DesiredCell) -> CellBackend:
        return local if isinstance(cell.spec.backend, LocalBackend) else kubernetes

    return choose


def open_source(repo: str | Path, state_dir: Path) -> GitSource:
    """A local repository as it is, or a URL mirrored into the state folder."""
    text = str(repo)
    if not is_url(text):
        return GitSource(repo)
    try:
        private_folder(state_dir)
    except OSError as exc:
        raise StoreError(f"cannot create the state folder {state_dir}: {exc.strerror}") from None
    return MirroredSource(text, state_dir / "mirror.git")


def wire(repo: str | Path, state_dir: Path, settings: Settings | None = None) -> Wiring:
    source = open_source(repo, state_dir)
    store = open_store(state_dir)
    try:
        return _wire(source, store, state_dir, settings or Settings())
    except OSError as exc:
        store.close()
        raise StoreError(f"cannot use the state folder {state_dir}: {exc}") from None
    except BaseException:
        store.close()
        raise


def _wire(source: GitSource, store: SqliteStore, state_dir: Path, settings: Settings) -> Wiring:
    built = ManifestCache(state_dir / "manifests", partial(export_tree, source.root))
    images = VerdictLedger(state_dir / DB)
    verifier = ImageVerifier(Registry(), ledger=images)
    git_dir = str(source.root)
    checks = [kubernetes_check(built), image_check(verifier, git_dir, built), podman_check()]
    compiler = Compiler(source, remember=16, checks=checks, prepare=[PinTags(verifier)])
    local = LocalCells(state_dir, lambda tree, target: export_tree(source.root, tree, target))

    def force_conflicts() -> bool:  # the fleet's choice, as of its current revision
        current = store.setting(CURRENT)
        if current is None:
            return False
        return compiler.revision(current).fleet.spec.kubernetes.force_conflicts

    kubernetes = KubernetesCells(store, built, force_conflicts, resync=settings.resync)
    backends = backend_for(local, kubernetes)
    reconciler = Reconciler(compiler, store, backends, settings)
    keys_now = lambda: key_reader(git_dir, source.resolve("HEAD"))  # noqa: E731
    reconciler.rollouts.image_gate = WaveGate(verifier, compiler.revision, keys_now, store)
    publisher = TablePublisher(state_dir / TABLE_FILE)
    reconciler.publish = publisher
    reconciler.exposure = ExposureTracker(publisher.current)
    caps = lambda rev: wave_caps(compiler.revision(rev).fleet.spec.rollout)  # noqa: E731
    reconciler.rollouts.exposure_gate = ExposureGate(store, publisher.current, caps)
    return Wiring(source, compiler, store, local, kubernetes, reconciler, state_dir / DB, images)
