"""`cellops tenant move` as a text edit of the tenants file, keeping its comments and layout.

Pure: takes the file's text and its parsed document, returns the new text.
"""

from __future__ import annotations

import re

from cellops.spec.documents import Parsed
from cellops.spec.tenants import TenantsDocument

NEW_FILE = "tenants/moved.yaml"
_CELL_VALUE = re.compile(r"(\bcell:\s*)([A-Za-z0-9-]+)")
_ID_KEY = re.compile(r"^(\s*-?\s*)id:")


class MoveError(ValueError):
    """The move cannot be written as an edit; the message says what to do instead."""


def move_in_file(text: str, parsed: Parsed[TenantsDocument], tenant: str, cell: str) -> str:
    """`text` with `tenant` pinned to `cell` (the tenant is listed in this file)."""
    assert parsed.model is not None
    index = next(i for i, t in enumerate(parsed.model.spec.tenants) if t.id == tenant)
    entry = parsed.model.spec.tenants[index]
    if entry.canary:
        raise MoveError(
            f"{parsed.path}: {tenant!r} is a canary tenant, it lives in the canary ring:"
            " remove `canary: true` first"
        )
    lines = text.splitlines(keepends=True)
    if entry.cell is not None:
        number = parsed.line("spec", "tenants", index, "cell") - 1
        lines[number], found = _CELL_VALUE.subn(rf"\g<1>{cell}", lines[number], count=1)
        if not found:
            raise MoveError(
                f"{parsed.path}:{number + 1}: cannot edit this line: set the cell by hand"
            )
        return "".join(lines)
    number = parsed.line("spec", "tenants", index, "id") - 1
    match = _ID_KEY.match(lines[number])
    if match is None:
        raise MoveError(f"{parsed.path}:{number + 1}: cannot add `cell:` here: add it by hand")
    indent = " " * len(match.group(1))
    lines.insert(number + 1, f"{indent}cell: {cell}\n")
    return "".join(lines)


def new_listing(existing: str | None, tenant: str, cell: str) -> str:
    """The text of `tenants/moved.yaml` with `tenant` added, pinned to `cell`."""
    head = existing or (
        "apiVersion: cellops.dev/v1\nkind: Tenants\nmetadata:\n  name: moved\nspec:\n  tenants:\n"
    )
    if not head.endswith("\n"):
        head += "\n"
    return head + f"    - id: {tenant}\n      cell: {cell}\n"
