"""Where each service runs and what it looks like there: defaults, service, overrides.

Cells that match the same overrides share one effective spec, so a fleet of thousands of
cells validates a handful of variants per service, not one spec per cell.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from cellops.model.problems import Problem
from cellops.spec.documents import Parsed
from cellops.spec.fleet import FleetDocument
from cellops.spec.mergepatch import merge_patch
from cellops.spec.messages import field_path, problems_from, warning
from cellops.spec.revision import Variant
from cellops.spec.selection import CellIndex
from cellops.spec.service import Override, ServiceDocument, ServiceSpec
from cellops.spec.yamldoc import PathItem

Placement = dict[str, dict[str, ServiceSpec]]


@dataclass
class _Variants:
    parsed: Parsed[ServiceDocument]
    base: dict[str, object]
    problems: list[Problem]
    specs: dict[tuple[int, ...], ServiceSpec | None]


def place_services(
    fleet: FleetDocument,
    services: Mapping[str, Parsed[ServiceDocument]],
    index: CellIndex,
) -> tuple[Placement, dict[str, tuple[Variant, ...]], list[Problem]]:
    defaults = fleet.spec.defaults.model_dump(mode="json", by_alias=True, exclude_none=True)
    placement: Placement = {}
    variants: dict[str, tuple[Variant, ...]] = {}
    problems: list[Problem] = []
    for name, parsed in services.items():
        assert parsed.model is not None
        found = tuple(_place_one(parsed, parsed.model, defaults, index, problems))
        variants[name] = found
        if len(found) == 1:  # the common case: one spec everywhere the service runs
            placement[name] = dict.fromkeys(index.ordered(found[0].cells), found[0].spec)
            continue
        by_cell: dict[str, ServiceSpec] = {}
        for variant in found:
            by_cell.update(dict.fromkeys(variant.cells, variant.spec))
        ordered = index.ordered(by_cell.keys())
        placement[name] = dict(zip(ordered, map(by_cell.__getitem__, ordered), strict=True))
    return placement, variants, problems


def _place_one(
    parsed: Parsed[ServiceDocument],
    document: ServiceDocument,
    defaults: dict[str, object],
    index: CellIndex,
    problems: list[Problem],
) -> list[Variant]:
    spec = document.spec
    cells = index.select(spec.cells)
    if not cells:
        problems.append(
            Problem(
                parsed.path,
                parsed.line("spec", "cells"),
                "spec.cells",
                f"selects no cell ({_describe_selector(spec.cells.selector, spec.cells.names)})",
            )
        )
        return []
    override_cells = []
    for i, override in enumerate(spec.overrides):
        picked = index.select(override.cells) & cells
        where = ("spec", "overrides", i, "cells")
        if not picked:
            problems.append(
                warning(
                    parsed.path,
                    parsed.line(*where),
                    field_path(where),
                    "this override selects no cell where the service runs; it has no effect",
                )
            )
        override_cells.append(picked)
    raw_spec = parsed.raw["spec"] if isinstance(parsed.raw, dict) else {}
    variants = _Variants(parsed, merge_patch(defaults, raw_spec), problems, {})  # type: ignore[arg-type]
    # Cells that match the same overrides (most match none) share one variant.
    groups: dict[tuple[int, ...], frozenset[str]] = {(): cells}
    for i, picked in enumerate(override_cells):
        split: dict[tuple[int, ...], frozenset[str]] = {}
        for signature, members in groups.items():
            inside = members & picked
            if inside:
                split[(*signature, i)] = inside
            if len(inside) < len(members):
                split[signature] = members - inside
        groups = split
    found = ((_variant(variants, sig), members) for sig, members in sorted(groups.items()))
    return [Variant(spec, frozenset(members)) for spec, members in found if spec is not None]


def _variant(variants: _Variants, signature: tuple[int, ...]) -> ServiceSpec | None:
    if signature in variants.specs:
        return variants.specs[signature]
    merged: object = variants.base
    overrides = variants.parsed.model.spec.overrides if variants.parsed.model else []
    for i in signature:
        merged = merge_patch(merged, overrides[i].patch)
    try:
        effective: ServiceSpec | None = ServiceSpec.model_validate(merged)
    except ValidationError as exc:
        effective = None
        variants.problems.extend(_locate(variants.parsed, exc, signature, overrides))
    variants.specs[signature] = effective
    return effective


def _locate(
    parsed: Parsed[ServiceDocument],
    exc: ValidationError,
    signature: tuple[int, ...],
    overrides: Sequence[Override],
) -> list[Problem]:
    """Errors in a merged spec are blamed on the last patch that set the field, if any."""
    problems = problems_from(parsed.path, exc, parsed.locator, ServiceSpec, ("spec",))
    located = []
    for problem, detail in zip(problems, exc.errors(), strict=True):
        loc: tuple[PathItem, ...] = tuple(detail["loc"])
        blamed = next(
            (i for i in reversed(signature) if _sets(overrides[i].patch, loc)),
            signature[-1] if signature else None,
        )
        if blamed is None:
            located.append(problem)
            continue
        where = ("spec", "overrides", blamed, "patch", *loc)
        located.append(
            Problem(
                parsed.path,
                parsed.line(*where),
                field_path(where),
                f"{problem.message} (after applying this override)",
            )
        )
    return located


def _sets(patch: object, loc: tuple[PathItem, ...]) -> bool:
    node = patch
    for item in loc[:1]:
        if not isinstance(node, dict) or item not in node:
            return False
        node = node[item]
    return True


def _describe_selector(selector: Mapping[str, str], names: list[str]) -> str:
    parts = [f"{k}={v}" for k, v in sorted(selector.items())]
    if names:
        parts.append(f"names={','.join(names)}")
    return "labels " + ", ".join(parts) if parts else "no cells in the fleet"
