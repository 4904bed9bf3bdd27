"""One fleet file -> one validated document model, with its locator, memoised by content.

Pure: parses the bytes it is given; the cache is plain memoisation keyed by content id.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from cellops.model.problems import Problem
from cellops.model.snapshot import FileBlob
from cellops.spec.messages import problems_from
from cellops.spec.yamldoc import Locator, YamlError, parse_yaml

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Parsed(Generic[M]):
    """A parsed file: its model (None when invalid), raw data, locator and problems."""

    path: str
    model: M | None
    raw: object
    locator: Locator
    problems: tuple[Problem, ...]

    def line(self, *path: str | int) -> int:
        return self.locator.line(path)


class ParseCache:
    """A bounded LRU of parsed documents keyed by (content id, path, model).

    Keeps the controller's re-reads of an unchanged fleet nearly free: only files whose
    content changed between two commits are parsed again.
    """

    def __init__(self, maxsize: int = 50_000) -> None:
        self._items: OrderedDict[tuple[str, str, str], Parsed[BaseModel]] = OrderedDict()
        self._maxsize = maxsize

    def get(self, key: tuple[str, str, str]) -> Parsed[BaseModel] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: tuple[str, str, str], item: Parsed[BaseModel]) -> None:
        self._items[key] = item
        if len(self._items) > self._maxsize:
            self._items.popitem(last=False)


def parse_document(
    path: str, blob: FileBlob, model: type[M], cache: ParseCache | None = None
) -> Parsed[M]:
    key = (blob.oid, path, model.__name__)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit  # type: ignore[return-value]
    parsed = _parse(path, blob.data, model)
    if cache is not None:
        cache.put(key, parsed)  # type: ignore[arg-type]
    return parsed


def _parse(path: str, data: bytes, model: type[M]) -> Parsed[M]:
    try:
        document = parse_yaml(path, data)
    except YamlError as exc:
        return Parsed(path, None, None, Locator(None), (exc.problem,))
    if not isinstance(document.data, dict):
        problem = Problem(path, 1, "", "expected a mapping with apiVersion, kind, metadata, spec")
        return Parsed(path, None, document.data, document.locator, (problem,))
    try:
        value = model.model_validate(document.data)
    except ValidationError as exc:
        problems = tuple(problems_from(path, exc, document.locator, model))
        return Parsed(path, None, document.data, document.locator, problems)
    return Parsed(path, value, document.data, document.locator, ())
