"""`kind: Tenants` (tenants/<name>.yaml): tenants by id, pinned, canary or weighted.

Tenants not listed anywhere are placed by the hash (`cellops.tenancy.placement`); a file
lists the tenants that need something else: a pin to a cell, the canary ring, a weight
(their share in exposure), or simply a fixed, reviewed home.
Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from cellops.spec.base import Metadata, SpecModel
from cellops.spec.fields import DnsLabel, FieldError, WholeNumber, YesNo
from cellops.tenancy.checks import TENANT_ID


def _check_tenant_id(value: str) -> str:
    if not TENANT_ID.match(value):
        raise ValueError(
            f"{value!r} is not a tenant id: expected letters, digits, '.', '_' and '-',"
            " starting with a letter or digit, at most 128 characters"
        )
    return value


TenantId = Annotated[str, AfterValidator(_check_tenant_id)]

_PERCENT = re.compile(r"^(\d{1,3}(\.\d+)?)%\Z")


def _parse_share(value: object) -> float:
    """'10%' -> 0.1: a share of tenants, written as a percentage."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"{value!r}: write the share as a percentage, such as {value}%")
    match = _PERCENT.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a percentage: expected one such as 10% or 2.5%")
    share = float(match.group(1)) / 100
    if share > 1:
        raise ValueError(f"{value!r} is not a share: expected 0% to 100%")
    return share


Share = Annotated[
    float,
    BeforeValidator(_parse_share),
    PlainSerializer(lambda v: f"{v * 100:g}%", return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{1,3}(\.\d+)?%$",
            "description": "a share of tenants (weighted), such as '10%'",
        }
    ),
]


class Tenant(SpecModel):
    id: TenantId
    cell: DnsLabel | None = Field(default=None, description="pin: the tenant lives in this cell")
    canary: YesNo = Field(
        default=False, description="an internal tenant: always placed in the canary ring"
    )
    weight: WholeNumber = Field(default=1, ge=1, le=1_000_000, description="share in exposure")

    @model_validator(mode="after")
    def _pin_or_canary(self) -> Self:
        if self.cell is not None and self.canary:
            raise FieldError(("canary",), "a pinned tenant cannot be canary: pin it or mark it")
        return self


class Routing(SpecModel):
    """How the router reaches cells and finds the tenant of a request (set in one file)."""

    key: Literal["header", "host", "path"] = Field(
        default="header",
        description="header: the tenant header; host: the first label of the Host;"
        " path: the first path segment (stripped before forwarding)",
    )
    header: str = Field(default="X-Tenant-Id", pattern=r"^[A-Za-z0-9-]{1,64}$")
    port: WholeNumber = Field(
        default=8080, ge=1, le=65535, description="a local cell's service port tenants use"
    )
    entry_points: dict[DnsLabel, str] = Field(
        default_factory=dict,
        description="cell -> entry URL (a Kubernetes cell's ingress, a load balancer)",
    )
    canary_cells: list[DnsLabel] = Field(
        default_factory=list,
        description="the canary ring canary tenants live in; default: the cells of the"
        " first rollout wave when it selects by label",
    )


class TenantsSpec(SpecModel):
    routing: Routing | None = None
    tenants: list[Tenant] = Field(default_factory=list)


class TenantsDocument(SpecModel):
    api_version: Literal["cellops.dev/v1"] = Field(alias="apiVersion")
    kind: Literal["Tenants"]
    metadata: Metadata
    spec: TenantsSpec = Field(default_factory=TenantsSpec)
