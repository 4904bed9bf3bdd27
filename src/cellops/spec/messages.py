"""Pydantic validation errors -> problems that say file, line, field and what was expected.

Pure: no I/O.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence

from pydantic import BaseModel, ValidationError

from cellops.model.problems import Problem, Severity
from cellops.spec.fields import FieldError
from cellops.spec.yamldoc import Locator, PathItem


def field_path(loc: Sequence[PathItem]) -> str:
    """('spec', 'ports', 0, 'port') -> 'spec.ports[0].port'."""
    out = ""
    for item in loc:
        out += f"[{item}]" if isinstance(item, int) else (f".{item}" if out else item)
    return out


def problems_from(
    file: str,
    error: ValidationError,
    locator: Locator,
    model: type[BaseModel],
    prefix: tuple[PathItem, ...] = (),
) -> list[Problem]:
    problems = []
    for detail in error.errors():
        loc: tuple[PathItem, ...] = prefix + _document_path(detail["loc"])
        cause = (detail.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            loc += cause.path
        message = _message(detail, model, loc[len(prefix) :])
        problems.append(Problem(file, locator.line(loc), field_path(loc), message))
    return problems


def _document_path(loc: tuple[int | str, ...]) -> tuple[PathItem, ...]:
    # Drop the tags pydantic adds for tagged unions and function validators. A backend's
    # tag (local, kubernetes) follows `backend`; elsewhere `kubernetes` is a field (the
    # fleet's spec.kubernetes).
    path: list[PathItem] = []
    for item in loc:
        if isinstance(item, str) and (
            item.startswith(("function-", "lax-", "strict-"))
            or item in ("str", "int", "[key]")
            or (item in ("local", "kubernetes") and path[-1:] == ["backend"])
        ):
            continue
        path.append(item)
    return tuple(path)


def _message(detail: typing.Any, model: type[BaseModel], loc: tuple[PathItem, ...]) -> str:
    kind = detail["type"]
    value = detail.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return _unknown_field(model, loc)
    if kind in (
        "string_type",
        "int_type",
        "int_parsing",
        "bool_type",
        "bool_parsing",
        "dict_type",
        "list_type",
        "float_type",
        "float_parsing",
        "model_type",
    ):
        expected = {
            "string": "a string",
            "int": "an integer",
            "bool": "true or false",
            "dict": "a mapping",
            "list": "a list",
            "float": "a number",
            "model": "a mapping",
        }[kind.split("_")[0]]
        quotable = kind == "string_type" and _scalar(value) and not isinstance(value, bool)
        hint = " (quote it in YAML)" if quotable else ""
        return f"expected {expected}, got {_describe(value)}{hint}"
    if kind == "value_error":
        return str(detail["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        return f"expected {detail['ctx']['expected']}, got {_describe(value)}"
    if kind == "union_tag_invalid":
        tag = detail["ctx"].get("tag", value)
        return f"unknown type {tag!r}: expected {detail['ctx']['expected_tags']}"
    if kind in _BOUNDS:
        symbol, key = _BOUNDS[kind]
        return f"expected a number {symbol} {detail['ctx'][key]}, got {value!r}"
    if kind == "enum":
        return f"expected {detail['ctx']['expected']}, got {_describe(value)}"
    if kind == "too_short":
        return f"expected at least {detail['ctx']['min_length']} item(s), got none"
    if kind == "int_from_float":
        return f"expected an integer, got {value!r}"
    return f"{detail['msg']} (got {_describe(value)})"


_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}


def _scalar(value: object) -> bool:
    return isinstance(value, bool | int | float) or value is None


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"{str(value).lower()} (YAML reads yes/no/on/off as booleans)"
    return repr(value)


def _unknown_field(model: type[BaseModel], loc: tuple[PathItem, ...]) -> str:
    name = str(loc[-1]) if loc else "?"
    owner = _model_at(model, loc[:-1])
    if owner is None:
        return f"unknown field {name!r}"
    allowed = sorted(f.alias or n for n, f in owner.model_fields.items())
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown field {name!r}: {hint}expected one of {', '.join(allowed)}"


def _model_at(model: type[BaseModel], loc: Sequence[PathItem]) -> type[BaseModel] | None:
    """The model class found by following `loc` through fields, lists, dicts and unions."""
    current: object = model
    for item in loc:
        candidates = _models_in(current)
        if isinstance(item, int):
            continue
        nxt: object = None
        for candidate in candidates:
            for field_name, info in candidate.model_fields.items():
                if item in (field_name, info.alias):
                    nxt = info.annotation
        if nxt is None:
            return None
        current = nxt
    models = _models_in(current)
    return models[0] if len(models) == 1 else None


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models_in(args[0])
    if origin in (typing.Union, types.UnionType, list, dict):
        return [m for arg in args for m in _models_in(arg)]
    return []


def warning(file: str, line: int, field: str, message: str) -> Problem:
    return Problem(file, line, field, message, Severity.WARNING)
