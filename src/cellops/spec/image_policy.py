"""`imagePolicy`: what an image must be to run, in cellops.yaml and per service.

Pure: no I/O (the edge, cellops.images, looks images up and checks their signatures).
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from cellops.spec.base import SpecModel
from cellops.spec.fields import FieldError


class SignatureAuthority(SpecModel):
    """Who may sign the fleet's images: a cosign public key (a PEM file in the fleet repo,
    ECDSA P-256 as `cosign generate-key-pair` makes)."""

    key: str = Field(
        pattern=r"^[^/].*\.(pem|pub)$",
        description="path of the PEM public key from the fleet repo's root, e.g. keys/cosign.pub",
    )


class ImagePolicy(SpecModel):
    require_digest: bool = Field(default=True, description="refuse tags: images pinned by digest")
    allowed_registries: list[str] = Field(
        default_factory=list, description="registry hosts images may come from; empty = any"
    )
    resolve_tags: bool = Field(
        default=False,
        description="a tag is resolved to a digest once, when the revision is accepted, and"
        " that digest is what runs (requireDigest must then be off)",
    )
    signatures: list[SignatureAuthority] = Field(
        default_factory=list,
        description="every image must carry a cosign signature by one of these; empty = no"
        " signature required (images are then not looked up in their registry)",
    )

    @model_validator(mode="after")
    def _tags_resolved_or_refused(self) -> Self:
        if self.resolve_tags and self.require_digest:
            raise FieldError(
                ("resolveTags",),
                "resolveTags needs requireDigest: false (a digest-pinned image has no tag"
                " to resolve)",
            )
        return self
