"""The base of every fleet-document model: frozen, strict about unknown fields, camelCase.

Pure: no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cellops.spec.fields import DnsLabel, Labels

API_VERSION = "cellops.dev/v1"


class SpecModel(BaseModel):
    """Fleet documents are read by people: unknown fields are errors, never ignored."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )


class Metadata(SpecModel):
    name: DnsLabel = Field(description="DNS-1123 label; must match the file or folder name")
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class CellSelector(SpecModel):
    """Which cells: all of `selector` labels must match (and the name be in `names`, if set).

    An empty selector matches every cell.
    """

    selector: Labels = Field(default_factory=dict)
    names: list[DnsLabel] = Field(default_factory=list)

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        if self.names and name not in self.names:
            return False
        return all(labels.get(key) == value for key, value in self.selector.items())

    @property
    def is_empty(self) -> bool:
        return not self.selector and not self.names
