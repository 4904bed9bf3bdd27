"""Where image verdicts stop a revision: at acceptance (a check of the `Compiler`: any
image that does not pass rejects the revision, naming the service, the image and why), and
before each wave (`WaveGate`: a wave whose images no longer pass is not applied, and is
tried again on the next pass)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pygit2

from cellops.images.verify import ImageVerifier, ReadKey, Verdict
from cellops.model.problems import Problem
from cellops.pipeline import Check
from cellops.render import DesiredFleet
from cellops.spec.image_policy import ImagePolicy
from cellops.spec.revision import Revision


def key_reader(git_dir: str, commit: str) -> ReadKey:
    """Reads a file of the fleet repo as of `commit` (a key removed since is missing)."""

    def read(path: str) -> bytes:
        repo = pygit2.Repository(git_dir)
        try:
            blob = repo.revparse_single(f"{commit}:{path}")
        except (KeyError, ValueError, pygit2.GitError):
            raise KeyError(path) from None
        if not isinstance(blob, pygit2.Blob) or blob.size > 64 * 1024:
            raise KeyError(path)
        return bytes(blob.data)

    return read


def images_of(
    revision: Revision, cells: frozenset[str] | None = None
) -> Iterator[tuple[str, str, ImagePolicy]]:
    """(service, image, policy) for every distinct image a service runs (in `cells`)."""
    fleet_policy = revision.fleet.spec.image_policy
    for service, placed in sorted(revision.placement.items()):
        seen: set[str] = set()
        for cell, spec in placed.items():
            if spec.image is None or spec.image in seen or (cells and cell not in cells):
                continue
            seen.add(spec.image)
            own = revision.services[service].spec.image_policy
            yield service, spec.image, own or fleet_policy


def verdicts(
    verifier: ImageVerifier, revision: Revision, read_key: ReadKey, cells: frozenset[str] | None
) -> list[tuple[str, Verdict]]:
    return [
        (service, verifier.verify(image, policy, read_key))
        for service, image, policy in images_of(revision, cells)
    ]


def image_check(verifier: ImageVerifier, git_dir: str) -> Check:
    def check(revision: Revision, desired: DesiredFleet) -> list[Problem]:
        read_key = key_reader(git_dir, revision.id)
        return [
            Problem(
                f"services/{service}/service.yaml",
                None,
                "spec.image",
                f"{verdict.image} cannot run: {verdict.reason}",
            )
            for service, verdict in verdicts(verifier, revision, read_key, None)
            if not verdict.ok
        ]

    return check


class WaveGate:
    """Before a wave applies: every image its cells run passes again, with the keys its
    revision names as the fleet repo holds them now (`head`: a key deleted or replaced
    since acceptance fails). Returns why the wave may not go, or None."""

    def __init__(
        self,
        verifier: ImageVerifier,
        revision: Callable[[str], Revision],
        head: Callable[[], str],
        git_dir: str,
    ) -> None:
        self.verifier = verifier
        self.revision = revision
        self.head = head
        self.git_dir = git_dir

    def __call__(self, revision_id: str, cells: frozenset[str]) -> str | None:
        revision = self.revision(revision_id)
        read_key = key_reader(self.git_dir, self.head())
        failed = [
            f"{service}: {verdict.image}: {verdict.reason}"
            + (" (the registry will be asked again)" if verdict.transient else "")
            for service, verdict in verdicts(self.verifier, revision, read_key, cells)
            if not verdict.ok
        ]
        return "; ".join(failed) or None
