"""`kind: Fleet` (cellops.yaml): rollout waves, image policy and service defaults.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from cellops.spec.base import Metadata, SpecModel
from cellops.spec.fields import DnsLabel, Duration, EnvName, FieldError, Labels
from cellops.spec.service import Resources


class WaveSpec(SpecModel):
    """A group of cells updated together: by label `selector`, or `percent` of the cells left."""

    name: DnsLabel
    selector: Labels | None = None
    percent: int | None = Field(default=None, ge=1, le=100)
    max_concurrent: int | None = Field(
        default=None, ge=1, description="cells updated at once; larger waves go in batches"
    )
    bake: Duration = Field(default=0.0, description="time a batch must stay healthy")

    @model_validator(mode="after")
    def _one_way_to_pick(self) -> Self:
        if self.selector is None and self.percent is None:
            raise ValueError("expected one of selector, percent")
        if self.selector is not None and self.percent is not None:
            raise FieldError(("percent",), "expected exactly one of selector, percent, not both")
        return self


def _default_waves() -> list[WaveSpec]:
    return [
        WaveSpec(name="canary", percent=1, max_concurrent=1),
        WaveSpec(name="rest", percent=100),
    ]


class RolloutPolicy(SpecModel):
    waves: list[WaveSpec] = Field(default_factory=_default_waves, min_length=1)
    failure_budget: int = Field(
        default=0, ge=0, description="cells that may fail before the rollout stops"
    )
    on_failure: Literal["rollback", "halt"] = Field(
        default="rollback",
        description="rollback: the failed cell returns to its last good revision",
    )
    progress_deadline: Duration = Field(
        default=300.0, description="time a cell has to become healthy at the new revision"
    )
    bake_grace: Duration | None = Field(
        default=None,
        description="how long a baking cell may be seen unhealthy before it fails; default:"
        " its services' longest probe period x failureThreshold (30s without probes)",
    )
    canary_fallback: bool = Field(
        default=True,
        description="when the first wave selects no changed cell, the first changed cell is"
        " still rolled out alone first",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [w.name for w in self.waves]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise FieldError(("waves", index, "name"), f"duplicate wave name {name!r}")
        return self


class ImagePolicy(SpecModel):
    require_digest: bool = Field(default=True, description="refuse tags: images pinned by digest")
    allowed_registries: list[str] = Field(
        default_factory=list, description="registry hosts images may come from; empty = any"
    )


class ServiceDefaults(SpecModel):
    """Values a service gets when it does not set them."""

    replicas: int = Field(default=1, ge=0)
    env: dict[EnvName, str] = Field(default_factory=dict)
    resources: Resources | None = None


class KubernetesSettings(SpecModel):
    """For Kubernetes cells: the API version objects are validated against, and whether
    server-side apply takes fields over from other managers (force conflicts)."""

    version: str = Field(default="1.32", pattern=r"^1\.\d+$")
    force_conflicts: bool = False


class FleetSpec(SpecModel):
    rollout: RolloutPolicy = Field(default_factory=RolloutPolicy)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    image_policy: ImagePolicy = Field(default_factory=ImagePolicy)
    defaults: ServiceDefaults = Field(default_factory=ServiceDefaults)


class FleetDocument(SpecModel):
    api_version: Literal["cellops.dev/v1"] = Field(alias="apiVersion")
    kind: Literal["Fleet"]
    metadata: Metadata
    spec: FleetSpec = Field(default_factory=FleetSpec)
