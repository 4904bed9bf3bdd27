"""`kind: Service` (services/<name>/service.yaml): what runs, where, and how it is checked.

Probe fields and defaults follow Kubernetes (periodSeconds 10, timeoutSeconds 1,
successThreshold 1, failureThreshold 3). Pure: no I/O.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from cellops.spec.base import CellSelector, Metadata, SpecModel
from cellops.spec.chart import Chart
from cellops.spec.fields import (
    Contract,
    DnsLabel,
    EnvName,
    FieldError,
    PortName,
    Quantity,
    WholeNumber,
    quantity_value,
)
from cellops.spec.image_policy import ImagePolicy

PATCHABLE_FIELDS = (
    "image",
    "run",
    "replicas",
    "ports",
    "env",
    "probes",
    "resources",
    "strategy",
    "chart",
)
PortRef = int | PortName


class HttpProbe(SpecModel):
    path: str = "/"
    port: PortRef
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(
                f"{value!r} is not an absolute URL path: expected it to start with '/'"
            )
        return value


class TcpProbe(SpecModel):
    port: PortRef


class ExecProbe(SpecModel):
    command: list[str] = Field(min_length=1)


class Probe(SpecModel):
    """Exactly one of http, tcp, exec; timing as in Kubernetes."""

    http: HttpProbe | None = None
    tcp: TcpProbe | None = None
    exec: ExecProbe | None = None
    initial_delay_seconds: WholeNumber = Field(default=0, ge=0)
    period_seconds: WholeNumber = Field(default=10, ge=1)
    timeout_seconds: WholeNumber = Field(default=1, ge=1)
    success_threshold: WholeNumber = Field(default=1, ge=1)
    failure_threshold: WholeNumber = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _one_handler(self) -> Self:
        handlers = [h for h in (self.http, self.tcp, self.exec) if h is not None]
        if len(handlers) != 1:
            raise ValueError(f"expected exactly one of http, tcp, exec; found {len(handlers)}")
        return self

    def port(self) -> PortRef | None:
        handler = self.http or self.tcp
        return handler.port if handler is not None else None


class Probes(SpecModel):
    readiness: Probe | None = None
    liveness: Probe | None = None
    startup: Probe | None = None

    @model_validator(mode="after")
    def _success_once(self) -> Self:
        # Kubernetes: liveness and startup probes must have successThreshold 1.
        for kind in ("liveness", "startup"):
            probe = getattr(self, kind)
            if probe is not None and probe.success_threshold != 1:
                raise FieldError(
                    (kind, "successThreshold"), "must be 1 for liveness and startup probes"
                )
        return self


class Port(SpecModel):
    name: PortName
    port: WholeNumber = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP"] = "TCP"


class ResourceList(SpecModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class Resources(SpecModel):
    requests: ResourceList = Field(default_factory=ResourceList)
    limits: ResourceList = Field(default_factory=ResourceList)

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Self:
        for kind in ("cpu", "memory"):
            request, limit = getattr(self.requests, kind), getattr(self.limits, kind)
            if request is not None and limit is not None:
                if quantity_value(request) > quantity_value(limit):
                    raise FieldError(
                        ("requests", kind), f"request {request} exceeds the limit {limit}"
                    )
        return self


class Run(SpecModel):
    """How the local backend starts a replica. `cwd` is relative to the service folder."""

    command: list[str] = Field(min_length=1)
    cwd: str = "app"
    env: dict[EnvName, str] = Field(default_factory=dict)

    @field_validator("cwd")
    @classmethod
    def _inside_app(cls, value: str) -> str:
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts:
            raise ValueError(f"{value!r} leaves the service folder: expected a path inside app/")
        if not path.parts or path.parts[0] != "app":
            raise ValueError(
                f"{value!r} is outside app/: only app/ is copied for the local backend"
            )
        return value


class Strategy(SpecModel):
    """Rolling update, as a Kubernetes Deployment's: replicas added above and missing below
    the desired count while a cell moves to a new version."""

    max_surge: WholeNumber = Field(default=1, ge=0)
    max_unavailable: WholeNumber = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _can_progress(self) -> Self:
        if self.max_surge == 0 and self.max_unavailable == 0:
            raise FieldError(("maxSurge",), "maxSurge and maxUnavailable cannot both be 0")
        return self


class Contracts(SpecModel):
    provides: list[Contract] = Field(default_factory=list)
    consumes: list[Contract] = Field(default_factory=list)


class Override(SpecModel):
    """A JSON merge patch (RFC 7386) applied to the service in the cells it selects."""

    cells: CellSelector
    patch: dict[str, object]

    @field_validator("patch")
    @classmethod
    def _patchable(cls, value: dict[str, object]) -> dict[str, object]:
        unknown = sorted(set(value) - set(PATCHABLE_FIELDS))
        if unknown:
            raise ValueError(
                f"cannot patch {', '.join(unknown)}: expected only {', '.join(PATCHABLE_FIELDS)}"
            )
        return value


class ServiceSpec(SpecModel):
    """`image` runs in Kubernetes cells, `run` in local ones. A service with neither runs
    only what its `manifests/` and `chart` hold, and only in Kubernetes cells."""

    cells: CellSelector = Field(default_factory=CellSelector)
    image: str | None = None
    run: Run | None = None
    chart: Chart | None = None
    replicas: WholeNumber | None = Field(default=None, ge=0, description="default: fleet defaults")
    ports: list[Port] = Field(default_factory=list)
    env: dict[EnvName, str] = Field(default_factory=dict)
    probes: Probes = Field(default_factory=Probes)
    resources: Resources | None = None
    strategy: Strategy = Field(default_factory=Strategy)
    contracts: Contracts = Field(default_factory=Contracts)
    depends_on: list[DnsLabel] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)
    image_policy: ImagePolicy | None = Field(
        default=None, description="this service's own image policy, in place of the fleet's"
    )

    @model_validator(mode="after")
    def _ports_consistent(self) -> Self:
        names = [p.name for p in self.ports]
        numbers = [str(p.port) for p in self.ports]
        for label, values in (("name", names), ("port", numbers)):
            for index, value in enumerate(values):
                if value in values[:index]:
                    raise FieldError(("ports", index, label), f"duplicate port {label}: {value}")
        for kind in ("readiness", "liveness", "startup"):
            probe = getattr(self.probes, kind)
            port = probe.port() if probe is not None else None
            if isinstance(port, str) and port not in names:
                known = ", ".join(names) or "none declared"
                handler = "http" if probe.http is not None else "tcp"
                raise FieldError(
                    ("probes", kind, handler, "port"),
                    f"port {port!r} is not one of the declared ports ({known})",
                )
        return self

    @model_validator(mode="after")
    def _lists_unique(self) -> Self:
        lists: tuple[tuple[str, list[str]], ...] = (
            ("dependsOn", self.depends_on),
            ("contracts.provides", self.contracts.provides),
            ("contracts.consumes", self.contracts.consumes),
        )
        for label, values in lists:
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise FieldError(
                    tuple(label.split(".")), f"duplicate entries: {', '.join(duplicates)}"
                )
        return self


class ServiceDocument(SpecModel):
    api_version: Literal["cellops.dev/v1"] = Field(alias="apiVersion")
    kind: Literal["Service"]
    metadata: Metadata
    spec: ServiceSpec
