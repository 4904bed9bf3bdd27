"""`imagePolicy`: what an image must be to run, in cellops.yaml and per service.

Pure: no I/O (the edge, cellops.images, looks images up and checks their signatures).
"""

from __future__ import annotations

import re
from typing import Self

from pydantic import Field, model_validator

from cellops.spec.base import SpecModel
from cellops.spec.fields import FieldError, YesNo


class SignatureAuthority(SpecModel):
    """Who may sign the fleet's images: a cosign public key (a PEM file in the fleet repo,
    ECDSA P-256 as `cosign generate-key-pair` makes), or a keyless identity: the OIDC
    issuer and subject of the signer's certificate, checked against a Sigstore bundle with
    the trusted root kept in the fleet repo."""

    key: str | None = Field(
        default=None,
        pattern=r"^[^/].*\.(pem|pub)$",
        description="path of the PEM public key from the fleet repo's root, e.g. keys/cosign.pub",
    )
    issuer: str | None = Field(
        default=None,
        min_length=1,
        description="keyless: the OIDC issuer of the signer's certificate, e.g."
        " https://token.actions.githubusercontent.com",
    )
    subject: str | None = Field(
        default=None, min_length=1, description="keyless: the signer's identity, exactly"
    )
    subject_pattern: str | None = Field(
        default=None,
        min_length=1,
        description="keyless: a regular expression the signer's identity must match in full",
    )
    trusted_root: str | None = Field(
        default=None,
        pattern=r"^[^/].*\.json$",
        description="keyless: path of Sigstore's trusted_root.json from the fleet repo's root",
    )

    @model_validator(mode="after")
    def _a_key_or_an_identity(self) -> Self:
        keyless = {"issuer": self.issuer, "subject": self.subject}
        keyless |= {"subjectPattern": self.subject_pattern, "trustedRoot": self.trusted_root}
        given = [name for name, value in keyless.items() if value is not None]
        if self.key is not None and given:
            raise FieldError(
                (given[0],), "a key or a keyless identity, not both: make it another authority"
            )
        if self.key is None and not given:
            raise FieldError(
                ("key",),
                "required: a cosign public key (key: keys/cosign.pub) or a keyless identity"
                " (issuer, subject or subjectPattern, trustedRoot)",
            )
        path = self.key or self.trusted_root or ""
        if ".." in path.split("/"):
            field = "key" if self.key else "trustedRoot"
            raise FieldError((field,), "must stay inside the fleet repo: no '..' in the path")
        if self.key is None:
            self._check_keyless()
        return self

    def _check_keyless(self) -> None:
        if self.issuer is None:
            raise FieldError(("issuer",), "required for a keyless identity: the OIDC issuer")
        if (self.subject is None) == (self.subject_pattern is None):
            raise FieldError(
                ("subject",), "a keyless identity needs subject or subjectPattern (one of them)"
            )
        if self.trusted_root is None:
            raise FieldError(
                ("trustedRoot",),
                "required for a keyless identity: the path of Sigstore's trusted_root.json in"
                " the fleet repo",
            )
        if self.subject_pattern is not None:
            try:
                re.compile(self.subject_pattern)
            except re.error as exc:
                raise FieldError(("subjectPattern",), f"not a regular expression: {exc}") from None


class Provenance(SpecModel):
    """An in-toto SLSA provenance attestation every image must carry."""

    builder: str = Field(
        min_length=1,
        description="the builder's id the provenance must name (runDetails.builder.id)",
    )


class ImagePolicy(SpecModel):
    require_digest: YesNo = Field(default=True, description="refuse tags: images pinned by digest")
    allowed_registries: list[str] = Field(
        default_factory=list, description="registry hosts images may come from; empty = any"
    )
    resolve_tags: YesNo = Field(
        default=False,
        description="a tag is resolved to a digest once, when the revision is accepted, and"
        " that digest is what runs (requireDigest must then be off)",
    )
    signatures: list[SignatureAuthority] = Field(
        default_factory=list,
        description="every image must carry a cosign signature by one of these; empty = no"
        " signature required (images are then not looked up in their registry)",
    )

    provenance: Provenance | None = Field(
        default=None,
        description="every image must also carry a SLSA provenance attestation from this"
        " builder, signed by one of the keyless identities of `signatures`",
    )

    @model_validator(mode="after")
    def _provenance_needs_an_identity(self) -> Self:
        if self.provenance is not None and not any(s.issuer for s in self.signatures):
            raise FieldError(
                ("provenance",),
                "provenance needs a keyless identity in signatures (issuer, subject,"
                " trustedRoot): the attestation is verified against it",
            )
        return self

    @model_validator(mode="after")
    def _tags_resolved_or_refused(self) -> Self:
        if self.resolve_tags and self.require_digest:
            raise FieldError(
                ("resolveTags",),
                "resolveTags needs requireDigest: false (a digest-pinned image has no tag"
                " to resolve)",
            )
        return self
