"""Arguments shared by the commands, and the source they name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cellops.pipeline import Check
from cellops.source.git import GitSource

RepoArgument = typer.Argument(
    Path("."), help="The fleet repo: a Git repository (default: the current directory)."
)
RevOption = typer.Option("HEAD", "--rev", "-r", help="Commit, branch or tag to read.")


def open_repo(repo: Path) -> GitSource:
    return GitSource(repo)


StateOption = typer.Option(
    None,
    "--state-dir",
    envvar="CELLOPS_STATE_DIR",
    help="Where the controller keeps its state (default: per repo, under ~/.local/state).",
)


FleetArgument = typer.Argument(
    ".",
    help="The fleet repo: a local Git repository (default: here), or a URL that the"
    " controller clones into its state folder and fetches on every poll.",
)


def seconds(value: str, option: str) -> float:
    """A duration option's value in seconds; bad usage (exit 2) if it is none."""
    from cellops.spec.fields import parse_duration

    try:
        return float(str(parse_duration(value)))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def state_dir(repo: str | Path, explicit: Path | None) -> Path:
    from cellops.wiring import default_state_dir

    return explicit if explicit is not None else default_state_dir(repo)


def edge_checks(repo: Path, path: Path | None, scratch: Path) -> list[Check]:
    """The checks beyond the fleet files themselves: Kubernetes objects against the API
    schema, with manifests built from the folder (`--path`) or exported from Git."""
    from cellops.backends.kubernetes.manifests import ManifestCache, build
    from cellops.backends.kubernetes.validation import kubernetes_check
    from cellops.source.git import export_tree

    if path is not None:
        root = path

        def from_folder(service: str, tree: str) -> list[dict[str, Any]]:
            label = f"services/{service}/manifests"
            return build(root / label, label)

        return [kubernetes_check(from_folder)]
    cache = ManifestCache(
        scratch, lambda tree, target: export_tree(open_repo(repo).root, tree, target)
    )
    return [kubernetes_check(cache.objects)]
