"""`cellops schema`: JSON Schema of each fleet document kind, for editors and CI."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer
from pydantic import BaseModel

from cellops.cli.output import console
from cellops.spec.cell import CellDocument
from cellops.spec.fleet import FleetDocument
from cellops.spec.service import ServiceDocument
from cellops.spec.tenants import TenantsDocument


class Kind(StrEnum):
    FLEET = "fleet"
    CELL = "cell"
    SERVICE = "service"
    TENANTS = "tenants"


MODELS: dict[Kind, type[BaseModel]] = {
    Kind.FLEET: FleetDocument,
    Kind.CELL: CellDocument,
    Kind.SERVICE: ServiceDocument,
    Kind.TENANTS: TenantsDocument,
}


def schema_of(kind: Kind) -> dict[str, object]:
    schema = MODELS[kind].model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://cellops.dev/schemas/v1/{kind}.schema.json"
    return schema


def schema(
    out: Path | None = typer.Option(
        None, "--out", "-d", help="Write <kind>.schema.json files into this folder."
    ),
    kind: Kind | None = typer.Option(None, "--kind", "-k", help="Only this kind."),
) -> None:
    """Write the JSON Schema of the Fleet, Cell, Service and Tenants documents.

    Point your editor at them (for example with a `# yaml-language-server: $schema=...`
    comment) to get completion and validation while editing the fleet repo.
    """
    kinds = [kind] if kind is not None else list(Kind)
    if out is None:
        document = schema_of(kinds[0]) if len(kinds) == 1 else {k: schema_of(k) for k in kinds}
        typer.echo(json.dumps(document, indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    for k in kinds:
        target = out / f"{k}.schema.json"
        target.write_text(json.dumps(schema_of(k), indent=2) + "\n")
        console.print(f"wrote {target}", markup=False)
