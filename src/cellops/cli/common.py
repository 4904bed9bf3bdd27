"""Arguments shared by the commands, and the source they name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cellops.backends.kubernetes.manifests import ManifestCache
    from cellops.model.problems import Problem
    from cellops.model.snapshot import Snapshot
    from cellops.pipeline import Check
    from cellops.render import DesiredFleet
    from cellops.source.git import GitSource
    from cellops.source.gitcli import GitCliSource
    from cellops.spec.revision import Revision


def open_repo(repo: Path) -> GitCliSource | GitSource:
    """The fleet repo, read through `git` (fast to start), or pygit2 without it."""
    from cellops.source.gitcli import open_local

    return open_local(repo)


def read_snapshot(repo: Path, rev: str, path: Path | None) -> Snapshot:
    """Revision `rev` of the fleet repo, or the files in the folder `path` as they are."""
    if path is None:
        return open_repo(repo).snapshot(rev)
    from cellops.source.worktree import read_worktree

    return read_worktree(path)


def seconds(value: str, option: str) -> float:
    """A duration option's value in seconds; bad usage (exit 2) if it is none."""
    from cellops.cli.params import BadParameter
    from cellops.spec.fields import parse_duration

    try:
        return float(str(parse_duration(value)))
    except ValueError as exc:
        raise BadParameter(str(exc), param_hint=option) from None


def state_dir(repo: str | Path, explicit: Path | None) -> Path:
    from cellops.statedir import find_state_dir

    return explicit if explicit is not None else find_state_dir(repo)


def edge_checks(repo: Path, path: Path | None, scratch: Path | None = None) -> list[Check]:
    """The checks beyond the fleet files themselves: Kubernetes objects against the API
    schema, with each service's manifests/ and chart materialised under `scratch` from
    the folder (`--path`) or from Git, by the same rules, and built there. The schema
    checker is loaded only for a revision with Kubernetes cells: a fleet of local cells
    never pays for it, nor for a scratch folder (without `scratch`, a temporary one is
    made when first needed and removed when the checks are, or at exit)."""

    loaded: list[Check] = []  # one checker (and one manifest cache) for every revision
    kept: list[object] = []  # the temporary folder, alive as long as the checker

    def check(revision: Revision, desired: DesiredFleet) -> list[Problem]:
        from cellops.spec.cell import KubernetesBackend

        if not any(isinstance(c.spec.backend, KubernetesBackend) for c in desired.cells.values()):
            return []
        if not loaded:
            from cellops.backends.kubernetes.validation import kubernetes_check

            folder = scratch
            if folder is None:
                import tempfile

                kept.append(temporary := tempfile.TemporaryDirectory(prefix="cellops-"))
                folder = Path(temporary.name)
            loaded.append(kubernetes_check(manifest_cache(repo, path, folder)))
        return loaded[0](revision, desired)

    return [check]


def manifest_cache(repo: Path, path: Path | None, scratch: Path) -> ManifestCache:
    """Services' own objects, built from trees materialised under `scratch`: exported
    from the folder `path`, or else from the Git repository `repo`."""
    from cellops.backends.kubernetes.manifests import ManifestCache
    from cellops.source.git import export_tree
    from cellops.source.materialise import export_worktree

    if path is not None:
        root = path
        return ManifestCache(scratch, lambda tree, target: export_worktree(root, tree, target))
    return ManifestCache(
        scratch, lambda tree, target: export_tree(open_repo(repo).root, tree, target)
    )
