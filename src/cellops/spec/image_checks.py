"""The image policy of every service's `image` (and the images its overrides set):
digest-pinned, from an allowed registry. Part of `checks.run_checks`; `image_problems` is
also what the Kubernetes containment applies to every container of rendered objects.
Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cellops.model.problems import Problem
from cellops.spec.image import parse_image
from cellops.spec.image_policy import ImagePolicy
from cellops.spec.yamldoc import PathItem

if TYPE_CHECKING:
    from cellops.spec.checks import Context


def check_images(ctx: Context) -> list[Problem]:
    fleet = ctx.fleet.model
    assert fleet is not None
    policy = fleet.spec.image_policy
    problems = []
    for name in ctx.services:
        spec = ctx.service(name).spec
        images: list[tuple[tuple[PathItem, ...], object]] = [(("spec", "image"), spec.image)]
        images += [
            (("spec", "overrides", i, "patch", "image"), o.patch.get("image"))
            for i, o in enumerate(spec.overrides)
        ]
        for where, image in images:
            if image is None:
                continue
            if not isinstance(image, str):
                problems.append(ctx.problem(name, where, "expected an image reference string"))
                continue
            own = spec.image_policy or policy  # a service's own policy, if it has one
            problems += [ctx.problem(name, where, m) for m in image_problems(image, own)]
    return problems


def image_problems(image: str, policy: ImagePolicy) -> list[str]:
    require_digest = policy.require_digest
    allowed = policy.allowed_registries
    try:
        ref = parse_image(image)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    if require_digest and ref.digest is None:
        problems.append(
            f"{image!r} is not pinned by digest: expected {ref.registry}/{ref.repository}"
            "@sha256:<digest> (the fleet's imagePolicy.requireDigest is on)"
        )
    if allowed and ref.registry not in allowed:
        problems.append(
            f"registry {ref.registry!r} is not allowed: expected one of {', '.join(allowed)}"
        )
    return problems
