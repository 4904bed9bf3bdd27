"""Where image verdicts stop a revision: at acceptance (a check of the `Compiler`: any
image that does not pass rejects the revision, naming the service, the image and why), and
before each wave (`WaveGate`: a wave whose images no longer pass is not applied, and is
tried again on the next pass)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from cellops.backends.kubernetes.manifests import Manifests
from cellops.images.own import own_images
from cellops.images.trust import MAX_FILE
from cellops.images.verify import ImageVerifier, ReadKey, Verdict
from cellops.model.errors import CellopsError, SourceError
from cellops.model.problems import Problem
from cellops.pipeline import Check
from cellops.render import DesiredFleet
from cellops.source.git import read_file
from cellops.spec.image_policy import ImagePolicy
from cellops.spec.revision import Revision
from cellops.store.base import Store


def key_reader(git_dir: str, commit: str) -> ReadKey:
    """Reads a file of the fleet repo as of `commit` (a key removed since is missing)."""

    def read(path: str) -> bytes:
        found = read_file(Path(git_dir), commit, path, limit=MAX_FILE)
        if found is None:
            raise KeyError(path)
        return found

    return read


def images_of(
    revision: Revision, cells: frozenset[str] | None = None
) -> Iterator[tuple[str, str, ImagePolicy]]:
    """(service, image, policy) for every distinct image a service runs (in `cells`)."""
    fleet_policy = revision.fleet.spec.image_policy
    for service, placed in sorted(revision.placement.items()):
        seen: set[str] = set()
        own = revision.services[service].spec.image_policy or fleet_policy
        for cell, spec in placed.items():
            if spec.image is None or spec.image in seen or (cells and cell not in cells):
                continue
            seen.add(spec.image)
            yield service, spec.image, own


def verdicts(
    verifier: ImageVerifier, revision: Revision, read_key: ReadKey, cells: frozenset[str] | None
) -> list[tuple[str, Verdict]]:
    return [
        (service, verifier.verify(image, policy, read_key))
        for service, image, policy in images_of(revision, cells)
    ]


class RegistryUnavailable(SourceError):
    """A registry did not answer while a revision was judged: it is judged again on the
    next pass (not rejected for it, and not accepted either)."""


def image_check(verifier: ImageVerifier, git_dir: str, manifests: Manifests | None) -> Check:
    """Every image a revision would run verifies: `spec.image`, and (with `manifests`) the
    containers of services' own objects where their policy asks for signatures or tags
    resolved."""

    def check(revision: Revision, desired: DesiredFleet) -> list[Problem]:
        read_key = key_reader(git_dir, revision.id)
        found = [
            (Problem(f"services/{s}/service.yaml", None, "spec.image", ""), v)
            for s, v in verdicts(verifier, revision, read_key, None)
        ]
        if manifests is not None:
            policies = _policies(revision)
            asking = {name for name, policy in policies.items() if _asks_registry(policy)}
            for service, image, file, field in own_images(manifests, desired, asking):
                verdict = verifier.verify(image, policies[service], read_key)
                found.append((Problem(file, None, field, ""), verdict))
        down = [f"{v.image}: {v.reason}" for _, v in found if v.transient]
        if down:
            raise RegistryUnavailable("; ".join(down) + " (asked again on the next pass)")
        return [
            replace(where, message=f"{verdict.image} cannot run: {verdict.reason}")
            for where, verdict in found
            if not verdict.ok
        ]

    return check


def _policies(revision: Revision) -> dict[str, ImagePolicy]:
    fleet = revision.fleet.spec.image_policy
    return {name: doc.spec.image_policy or fleet for name, doc in revision.services.items()}


def _asks_registry(policy: ImagePolicy) -> bool:
    return bool(policy.signatures) or policy.resolve_tags


class WaveGate:
    """Before a wave applies: every image its cells run passes again, with the keys its
    revision names as the fleet repo holds them now (`keys_now`: a key deleted or
    replaced since acceptance fails). Returns why the wave may not go, or None; each new reason is
    an `images-blocked` event."""

    def __init__(
        self,
        verifier: ImageVerifier,
        revision: Callable[[str], Revision],
        keys_now: Callable[[], ReadKey],
        store: Store,
    ) -> None:
        self.verifier = verifier
        self.revision = revision
        self.keys_now = keys_now
        self.store = store
        self._said: tuple[str, str] | None = None

    def __call__(self, revision_id: str, cells: frozenset[str]) -> str | None:
        try:
            revision = self.revision(revision_id)
            read_key = self.keys_now()
        except CellopsError as exc:  # judged again (a registry down after a restart)
            return self._said_once(revision_id, f"its revision cannot be judged: {exc}")
        try:
            found = verdicts(self.verifier, revision, read_key, cells)
        except Exception as exc:  # whatever a registry sent: the wave waits (fail closed)
            return self._said_once(revision_id, f"its images cannot be checked: {exc!r}")
        failed = [
            f"{service}: {verdict.image}: {verdict.reason}"
            + (" (the registry will be asked again)" if verdict.transient else "")
            for service, verdict in found
            if not verdict.ok
        ]
        return self._said_once(revision_id, "; ".join(failed) or None)

    def _said_once(self, revision_id: str, reason: str | None) -> str | None:
        if reason is not None and self._said != (revision_id, reason):
            self.store.add_event(
                self.verifier.clock(),
                "images-blocked",
                f"wave not applied: {reason}",
                revision=revision_id,
            )
        self._said = (revision_id, reason) if reason else None
        return reason
