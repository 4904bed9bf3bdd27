"""`resolveTags`: a tagged image is pinned to the digest its tag names when the revision is
first accepted (recorded in the store, never resolved again), and that pinned reference,
`registry/name:tag@sha256:…`, is what is rendered and run."""

from __future__ import annotations

from dataclasses import replace

from cellops.images.gate import RegistryUnavailable
from cellops.images.registry import RegistryError
from cellops.images.verify import ImageVerifier
from cellops.model.errors import RevisionRejected
from cellops.model.problems import Problem
from cellops.spec.image import parse_image
from cellops.spec.revision import Revision, Variant
from cellops.spec.service import ServiceSpec


class PinTags:
    """A `Compiler` step before rendering: each tag of a service whose policy resolves
    tags becomes the digest it was first seen with. A registry down raises
    RegistryUnavailable (judged again next pass); a tag the registry lacks rejects."""

    def __init__(self, verifier: ImageVerifier) -> None:
        self.verifier = verifier

    def __call__(self, revision: Revision) -> Revision:
        fleet = revision.fleet.spec.image_policy
        variants = dict(revision.variants)
        placement = {name: dict(cells) for name, cells in revision.placement.items()}
        problems: list[Problem] = []  # one per service and image, whatever its variants
        for name, doc in revision.services.items():
            if not (doc.spec.image_policy or fleet).resolve_tags:
                continue
            pinned: list[Variant] = []
            for variant in revision.variants.get(name, ()):
                spec = self._pinned(name, variant.spec, problems)
                pinned.append(Variant(spec, variant.cells))
                placement[name].update(dict.fromkeys(variant.cells, spec))
            variants[name] = tuple(pinned)
        if problems:
            unique = tuple(dict.fromkeys(problems))
            raise RevisionRejected(revision.id, (*unique, *revision.warnings))
        return replace(revision, variants=variants, placement=placement)

    def _pinned(self, service: str, spec: ServiceSpec, problems: list[Problem]) -> ServiceSpec:
        image = spec.image
        if image is None or "@" in image:
            return spec
        try:
            parse_image(image)
            digest = self.verifier.resolve(image)
        except RegistryError as exc:
            if exc.transient:
                raise RegistryUnavailable(f"{image}: {exc} (asked again next pass)") from None
            problems.append(_problem(service, f"{image}: {exc}"))
            return spec
        except ValueError as exc:
            problems.append(_problem(service, str(exc)))
            return spec
        return spec.model_copy(update={"image": f"{image}@{digest}"})


def _problem(service: str, message: str) -> Problem:
    return Problem(f"services/{service}/service.yaml", None, "spec.image", message)
