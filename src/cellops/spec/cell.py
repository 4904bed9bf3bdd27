"""`kind: Cell` (cells/<name>.yaml): backend, labels, capacity and state of one cell.

Pure: no I/O.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator

from cellops.spec.base import Metadata, SpecModel
from cellops.spec.fields import DnsLabel, Quantity, WholeNumber

_IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}\Z")


class CellState(StrEnum):
    ACTIVE = "active"
    DRAINING = "draining"  # still updated; its tenants are being moved away
    QUARANTINED = "quarantined"  # frozen: never part of a rollout plan
    RETIRED = "retired"  # out of service: no tenants, no routes, never planned


class LocalBackend(SpecModel):
    """OS processes on this machine, bound to the cell's own loopback address."""

    type: Literal["local"] = "local"
    address: str | None = Field(
        default=None, description="loopback address in 127.0.0.0/8; derived from the name if unset"
    )

    @field_validator("address")
    @classmethod
    def _loopback(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 address") from None
        network = ipaddress.IPv4Network("127.0.0.0/8")
        if address not in network or address in (
            network.network_address,
            network.broadcast_address,
        ):
            raise ValueError(
                f"{value!r} is not a usable loopback address (127.0.0.1-127.255.255.254)"
            )
        return value


# Pod Security Standards levels, most permissive first
PodSecurity = Literal["privileged", "baseline", "restricted"]


class KubernetesBackend(SpecModel):
    """A namespace (or a whole cluster) per cell."""

    type: Literal["kubernetes"]
    kubeconfig: str | None = Field(default=None, description="path; default: the usual lookup")
    context: str | None = Field(default=None, description="kubeconfig context; default: current")
    namespace: DnsLabel | None = Field(default=None, description="default: cell-<name>")
    iam_role_arn: str | None = Field(
        default=None, description="IAM role for the cell's workloads (EKS IRSA annotation)"
    )
    pod_security: PodSecurity | None = Field(
        default=None,
        description="Pod Security Standards level the cell's pods must meet, enforced by the"
        " namespace and checked at validation; default: the fleet's spec.kubernetes.podSecurity",
    )
    ingress_namespace: DnsLabel | None = Field(
        default=None,
        description="namespace of the ingress controller that may reach the cell's pods;"
        " default: the fleet's spec.kubernetes.ingressNamespace",
    )

    @field_validator("iam_role_arn")
    @classmethod
    def _arn(cls, value: str | None) -> str | None:
        if value is not None and not _IAM_ROLE_ARN.match(value):
            raise ValueError(
                f"{value!r} is not an IAM role ARN: expected arn:aws:iam::<account>:role/<name>"
            )
        return value


def _backend_shorthand(value: object) -> object:
    """`backend: local` is short for `backend: {type: local}`."""
    return {"type": value} if isinstance(value, str) else value


Backend = Annotated[
    LocalBackend | KubernetesBackend,
    Field(discriminator="type"),
    BeforeValidator(
        _backend_shorthand,
        json_schema_input_type=Literal["local", "kubernetes"] | LocalBackend | KubernetesBackend,
    ),
]


class Capacity(SpecModel):
    max_tenants: WholeNumber | None = Field(default=None, ge=0)
    cpu: Quantity | None = None
    memory: Quantity | None = None


@lru_cache(maxsize=65_536)  # validation asks for every cell of every revision
def derived_address(fleet: str, cell: str) -> str:
    """The loopback address of a local cell that sets none: 127.a.b.c from a hash of the
    fleet's name (`metadata.name` in cellops.yaml) and the cell's.

    Stable: a cell keeps its address while neither name changes. The fleet's name is in it
    so that two fleets on one machine with the same cell names get different addresses;
    16 million choices make collisions rare, and validation rejects the fleet that has one
    (set `address` on either cell).
    """
    digest = hashlib.sha256(f"{fleet}\0{cell}".encode()).digest()
    return "127." + ".".join(str(1 + byte % 254) for byte in digest[:3])


def local_address(fleet: str, name: str, spec: CellSpec) -> str | None:
    if not isinstance(spec.backend, LocalBackend):
        return None
    return spec.backend.address or derived_address(fleet, name)


@functools.lru_cache(maxsize=1 << 14)
def with_address(fleet: str, name: str, spec: CellSpec) -> CellSpec:
    """A local cell's spec with its address in place, derived if unset: what a rendered
    cell carries, so that the ledger keeps the address a cell was given. Remembered (specs
    are frozen): each revision renders every cell, and most cells' specs do not change."""
    if not isinstance(spec.backend, LocalBackend) or spec.backend.address is not None:
        return spec
    backend = spec.backend.model_copy(update={"address": derived_address(fleet, name)})
    return spec.model_copy(update={"backend": backend})


class CellSpec(SpecModel):
    backend: Backend = Field(default_factory=LocalBackend)
    capacity: Capacity = Field(default_factory=Capacity)
    state: CellState = CellState.ACTIVE


class CellDocument(SpecModel):
    api_version: Literal["cellops.dev/v1"] = Field(alias="apiVersion")
    kind: Literal["Cell"]
    metadata: Metadata
    spec: CellSpec = Field(default_factory=CellSpec)
