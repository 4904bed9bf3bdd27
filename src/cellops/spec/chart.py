"""`spec.chart` of a service: a Helm chart whose rendered objects the service runs in
Kubernetes cells, from its own folder (`services/<name>/chart/`) or an OCI registry,
pinned by version and digest.

Values are layered as `helm template -f a -f b --set-json ...` would: the chart's
defaults, then each of `valuesFiles` in order, then `values` (which overrides can patch
per cell, as a JSON merge patch). Pure: no I/O.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Self

from pydantic import Field, field_validator, model_validator

from cellops.spec.base import SpecModel
from cellops.spec.fields import DnsLabel, FieldError

_OCI = re.compile(r"^oci://[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+\Z")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?\Z")
VALUES_FOLDERS = ("chart", "values")  # where values files may live in the service folder


class Chart(SpecModel):
    """`oci` unset: the chart is the service's `chart/` folder. `oci` set: the chart
    `oci://host/path/name` at `version`, whose manifest must have `digest`."""

    oci: str | None = None
    version: str | None = None
    digest: str | None = None
    release_name: DnsLabel | None = Field(default=None, description="default: the service")
    values: dict[str, object] = Field(default_factory=dict)
    values_files: list[str] = Field(default_factory=list)

    @field_validator("oci")
    @classmethod
    def _oci(cls, value: str | None) -> str | None:
        if value is not None and not _OCI.match(value):
            raise ValueError(
                f"{value!r} is not an OCI chart reference: expected oci://host/path/name"
                " (no tag: the version goes in chart.version)"
            )
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not _DIGEST.match(value):
            raise ValueError(f"{value!r} is not a digest: expected sha256:<64 hex digits>")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not _VERSION.match(value):
            raise ValueError(f"{value!r} is not an exact chart version: expected e.g. 6.14.1")
        return value

    @field_validator("values_files")
    @classmethod
    def _inside(cls, value: list[str]) -> list[str]:
        for entry in value:
            path = PurePosixPath(entry)
            if path.is_absolute() or ".." in path.parts or len(path.parts) < 2:
                raise ValueError(
                    f"{entry!r} is not a file in the service folder: expected a path under"
                    f" {' or '.join(f + '/' for f in VALUES_FOLDERS)}"
                )
            if path.parts[0] not in VALUES_FOLDERS:
                raise ValueError(
                    f"{entry!r} is outside {' and '.join(f + '/' for f in VALUES_FOLDERS)}:"
                    " only those folders of the service are part of its version"
                )
        return value

    @model_validator(mode="after")
    def _pinned(self) -> Self:
        if self.oci is None:
            for name in ("version", "digest"):
                if getattr(self, name) is not None:
                    raise FieldError(
                        (name,), f"{name} pins an OCI chart: set chart.oci, or remove {name}"
                    )
            return self
        for name in ("version", "digest"):
            if getattr(self, name) is None:
                raise FieldError(
                    (name,),
                    f"an OCI chart must be pinned by version and digest: {name} is missing",
                )
        return self

    @property
    def local(self) -> bool:
        return self.oci is None
