"""`kind: Fleet` (cellops.yaml): rollout waves, image policy and service defaults.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from cellops.spec.base import Metadata, SpecModel
from cellops.spec.cell import CellSpec, KubernetesBackend, PodSecurity
from cellops.spec.fields import DnsLabel, Duration, EnvName, FieldError, Labels, WholeNumber, YesNo
from cellops.spec.image_policy import ImagePolicy
from cellops.spec.k8s_scope import CLUSTER_SCOPED
from cellops.spec.service import Resources
from cellops.spec.tenants import Share


class WaveSpec(SpecModel):
    """A group of cells updated together: by label `selector`, or `percent` of the cells left."""

    name: DnsLabel
    selector: Labels | None = None
    percent: WholeNumber | None = Field(default=None, ge=1, le=100)
    max_concurrent: WholeNumber | None = Field(
        default=None, ge=1, description="cells updated at once; larger waves go in batches"
    )
    bake: Duration = Field(default=0.0, description="time a batch must stay healthy")
    approval: Literal["auto", "manual"] = Field(
        default="auto",
        description="manual: the rollout waits before this wave until an operator approves"
        " it (`cellops rollout approve`, or the API)",
    )
    max_exposure: Share | None = Field(
        default=None,
        description="the most of the tenants (weighted) that may be on cells running the"
        " revision unbaked while this wave runs, such as '10%': the wave goes in batches"
        " that keep within it",
    )

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
    failure_budget: WholeNumber = Field(
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
    canary_fallback: YesNo = Field(
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


class ServiceDefaults(SpecModel):
    """Values a service gets when it does not set them."""

    replicas: WholeNumber = Field(default=1, ge=0)
    env: dict[EnvName, str] = Field(default_factory=dict)
    resources: Resources | None = None


class NamespacedKind(SpecModel):
    """A custom resource kind the fleet vouches is namespaced (its CRD says `scope:
    Namespaced`): a cell's manifests may then hold it. The server's discovery still has the
    last word when it is applied."""

    group: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$",
        description="API group of the kind, e.g. monitoring.coreos.com",
    )
    kind: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", description="e.g. ServiceMonitor")

    @model_validator(mode="after")
    def _not_cluster_scoped(self) -> Self:
        if (self.group, self.kind) in CLUSTER_SCOPED:
            raise FieldError(
                ("kind",), f"{self.kind} ({self.group}) is cluster-scoped: a cell cannot hold it"
            )
        return self


class KubernetesSettings(SpecModel):
    """For Kubernetes cells: the API version objects are validated against, whether
    server-side apply takes fields over from other managers (force conflicts), and what a
    cell's namespace lets in and out."""

    version: str = Field(default="1.32", pattern=r"^1\.\d+$")
    force_conflicts: YesNo = False
    pod_security: PodSecurity = Field(
        default="restricted",
        description="Pod Security Standards level of every cell's namespace (a cell may set"
        " its own in spec.backend.podSecurity); every pod template is checked against it",
    )
    ingress_namespace: DnsLabel | None = Field(
        default=None,
        description="namespace of the ingress controller allowed to reach the cells' pods;"
        " default: none (an Ingress in a cell is then unreachable)",
    )
    namespaced_kinds: list[NamespacedKind] = Field(
        default_factory=list,
        description="custom resource kinds a cell may hold; other kinds that are not"
        " namespaced built-in kinds are refused",
    )
    allowed_cluster_roles: list[str] = Field(
        default_factory=lambda: ["view", "edit"],
        description="ClusterRoles a RoleBinding in a cell may grant (within the cell's"
        " namespace only); a Role of the cell's own is always allowed",
    )

    def cell_spec(self, spec: CellSpec) -> CellSpec:
        """A Kubernetes cell's spec with the fleet's defaults in place of what it leaves
        unset: what is rendered and hashed (a change of either reaches the cell)."""
        backend = spec.backend
        if not isinstance(backend, KubernetesBackend):
            return spec
        if backend.pod_security is not None and backend.ingress_namespace is not None:
            return spec
        effective = backend.model_copy(
            update={
                "pod_security": backend.pod_security or self.pod_security,
                "ingress_namespace": backend.ingress_namespace or self.ingress_namespace,
            }
        )
        return spec.model_copy(update={"backend": effective})


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
