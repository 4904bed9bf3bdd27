"""An image's verdict under an image policy: its digest (a tag resolved once), and the
fleet key or keyless identity that signed it. Verdicts that passed are cached by digest and
policy (the keys' and trusted roots' contents), so an unchanged image costs no registry
request until `recheck_after` seconds have passed; a key or trusted root removed or changed
is another policy, checked again at once. A registry
that cannot be read gives a failed verdict (fail closed), never a cached pass."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from cellops.images import trust
from cellops.images.registry import NotFound, Registry, RegistryError
from cellops.images.trust import ReadKey, Trust
from cellops.images.verdict import Verdict
from cellops.spec.image import ImageRef, parse_image
from cellops.spec.image_policy import ImagePolicy

__all__ = ["ImageVerifier", "ReadKey", "Record", "Verdict"]


class Record(Protocol):
    """Where verdicts and resolved tags are kept (images/ledger.py)."""

    def record(self, verdict: Verdict) -> None: ...
    def resolve(self, image: str, digest: str, at: float) -> None: ...
    def resolved(self) -> dict[str, str]: ...


class ImageVerifier:
    def __init__(
        self,
        registry: Registry,
        clock: Callable[[], float] = time.time,
        recheck_after: float = 300.0,
        ledger: Record | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.recheck_after = recheck_after
        self.ledger = ledger
        self._passed: dict[tuple[str, str], Verdict] = {}
        # a tagged reference -> the digest it had when first accepted
        self.resolved: dict[str, str] = ledger.resolved() if ledger is not None else {}

    def verify(self, image: str, policy: ImagePolicy, read_key: ReadKey) -> Verdict:
        cached, verdict = self._verify(image, policy, read_key)
        if self.ledger is not None and not cached:
            self.ledger.record(verdict)
        return verdict

    def _verify(self, image: str, policy: ImagePolicy, read_key: ReadKey) -> tuple[bool, Verdict]:
        now = self.clock()
        try:
            ref = parse_image(image)
            authorities = trust.load(policy, read_key)
            digest = self._digest(image, ref, policy, now)
        except (ValueError, RegistryError) as exc:
            return False, Verdict(image, None, None, str(exc), now, _transient(exc))
        if not authorities:
            return True, Verdict(image, digest, None, None, now)
        cache_key = (f"{ref.registry}/{ref.repository}@{digest}", authorities.fingerprint)
        cached = self._passed.get(cache_key)
        if cached is not None and now - cached.at < self.recheck_after:
            return True, cached
        verdict = self._check(image, ref, digest, authorities, now)
        if verdict.ok:
            self._passed[cache_key] = verdict
        else:
            self._passed.pop(cache_key, None)
        return False, verdict

    def _digest(self, image: str, ref: ImageRef, policy: ImagePolicy, now: float) -> str | None:
        if ref.digest is not None:
            return ref.digest
        if not (policy.resolve_tags or policy.signatures):
            return None  # nothing asks for the registry
        return self.resolve(image, now)

    def resolve(self, image: str, now: float | None = None) -> str:
        """The digest `image`'s tag named when first resolved; raises ValueError for a tag
        the registry lacks, RegistryError when it cannot be asked."""
        if image not in self.resolved:
            ref = parse_image(image)
            try:
                found = self.registry.manifest(ref.registry, ref.repository, ref.tag or "latest")
            except NotFound:
                raise ValueError(f"{image}: no such tag in its registry") from None
            self.resolved[image] = found.digest
            if self.ledger is not None:
                self.ledger.resolve(image, found.digest, self.clock() if now is None else now)
        return self.resolved[image]

    def _check(
        self, image: str, ref: ImageRef, digest: str | None, authorities: Trust, now: float
    ) -> Verdict:
        assert digest is not None
        host, repository = ref.registry, ref.repository
        try:
            self.registry.manifest(host, repository, digest)
            signer, why = trust.judge(self.registry, host, repository, digest, authorities)
        except NotFound:
            return Verdict(image, digest, None, f"{digest} is not in {host}/{repository}", now)
        except RegistryError as exc:
            return Verdict(image, digest, None, str(exc), now, exc.transient)
        return Verdict(image, digest, signer, why, now)


def _transient(exc: Exception) -> bool:
    return isinstance(exc, RegistryError) and exc.transient
