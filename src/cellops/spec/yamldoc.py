"""YAML documents that remember where each value came from, and refuse hostile input.

We read libyaml's event stream ourselves (no composer, no recursion) and build both the
plain Python data and a node graph with marks (line, column), so that:

- duplicate keys are errors (PyYAML keeps the last one silently);
- anchors and aliases are errors *before* anything is expanded: an alias bomb ("billion
  laughs") or a recursive alias (`x: &a [*a]`) is refused at its first `&`, in constant
  time and memory;
- nesting is bounded (libyaml's parser is quadratic in flow depth and its composer
  recurses in C), so `[[[[...]]]]` is a problem, not a stall, a RecursionError or a crash;
- any field path can later be mapped back to a line.

Pure: parses bytes it is given; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.resolver import Resolver

from cellops.model.problems import Problem

try:  # libyaml is several times faster; fall back to the pure-Python parser if absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

PathItem = str | int
MAX_DEPTH = 64  # deeper than any real fleet document or Kubernetes object
MAX_BYTES = 4 << 20
ANCHORS = "YAML anchors and aliases are not allowed (line {line}): write the value out"


class Locator:
    """Maps a field path (`("spec", "ports", 0, "port")`) to the line it was written on."""

    def __init__(self, root: yaml.Node | None) -> None:
        self._root = root

    def line(self, path: Sequence[PathItem]) -> int:
        node = self._root
        if node is None:
            return 1
        line = node.start_mark.line
        for item in path:
            found = _child(node, item)
            if found is None:
                # Pydantic inserts union tags and validator names into error paths; those
                # are not in the document, so skip them rather than stop at the parent.
                continue
            line, node = found
        return line + 1


def _child(node: yaml.Node, item: PathItem) -> tuple[int, yaml.Node] | None:
    """The child at `item` and the line that names it (a mapping's key line)."""
    if isinstance(node, yaml.MappingNode) and isinstance(item, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == item:
                return key.start_mark.line, value
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(item, int):
        if 0 <= item < len(node.value):
            child: yaml.Node = node.value[item]
            return child.start_mark.line, child
    return None


@dataclass(frozen=True)
class ParsedYaml:
    data: object
    locator: Locator


class YamlError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def parse_yaml(path: str, data: bytes) -> ParsedYaml:
    """Parse one YAML document. Raises `YamlError` naming the file and line."""
    documents = _parse(path, data, single=True)
    root, value = documents[0] if documents else (None, None)
    return ParsedYaml(value, Locator(root))


def parse_yaml_stream(path: str, data: bytes, max_bytes: int = MAX_BYTES) -> list[object]:
    """Every document of a YAML stream (`---` separated), empty ones left out. Same
    refusals as `parse_yaml`; raises `YamlError` naming the file and line."""
    return [value for _, value in _parse(path, data, single=False, max_bytes=max_bytes)]


def _parse(
    path: str, data: bytes, single: bool, max_bytes: int = MAX_BYTES
) -> list[tuple[yaml.Node, object]]:
    if len(data) > max_bytes:
        message = f"is {len(data)} bytes: YAML files are limited to {max_bytes} bytes"
        raise YamlError(Problem(path, None, "", message))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(Problem(path, None, "", f"not UTF-8 text ({exc.reason})")) from exc
    loader = _Loader(text)
    try:
        return _Builder(path, loader, single).documents()
    except yaml.MarkedYAMLError as exc:
        raise YamlError(Problem(path, *_syntax_error(text, exc))) from exc
    finally:
        loader.dispose()


def _syntax_error(text: str, exc: yaml.MarkedYAMLError) -> tuple[int, str, str]:
    """(line, field, message) for a YAML syntax error, with the parser's context.

    When the parser only noticed the problem at the end of the file (an unclosed quote or
    bracket), the line where the construct began is the useful one.
    """
    problem, context = exc.problem_mark, exc.context_mark
    mark = problem or context
    message = f"invalid YAML: {exc.problem}"
    if context is not None and exc.context:
        message += f" ({exc.context} on line {context.line + 1})"
        if problem is not None and "end of stream" in (exc.problem or ""):
            mark = context
    line = mark.line + 1 if mark is not None else 1
    lines = text.splitlines()
    if 0 < line <= len(lines) and "\t" in lines[line - 1]:
        message += "; tabs cannot indent YAML, use spaces"
    return line, "", message


_MERGE = "tag:yaml.org,2002:merge"
_CONSTRUCTORS = SafeConstructor.yaml_constructors
_PLAIN = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "bool", "null", "float")}
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()  # used only for the plain tags, whose constructors keep no state
_OTHER = object()  # a scalar the plain constructors do not build (a timestamp, binary)
_MEMO_LENGTH = 128


@lru_cache(maxsize=16_384)
def _implicit(value: str, implicit: tuple[bool, bool]) -> tuple[str, object]:
    """(tag, value) of an untagged scalar. Memoised (fleet documents repeat the same keys
    and values over and over); every value it builds is immutable."""
    tag = _RESOLVER.resolve(yaml.ScalarNode, value, implicit)  # type: ignore[no-untyped-call]
    if tag in _PLAIN:
        return tag, _CONSTRUCTORS[tag](_CONSTRUCTOR, yaml.ScalarNode(tag, value))
    return tag, _OTHER


class _Frame:
    """A mapping or sequence being built: its node, its value, a mapping's pending key."""

    __slots__ = ("key", "node", "value")

    def __init__(self, node: yaml.Node, value: dict[str, object] | list[object]) -> None:
        self.node = node
        self.value = value
        self.key: str | None = None


class _Builder:
    """Builds (node graph, data) per document from the event stream, iteratively."""

    def __init__(self, path: str, loader: _Loader, single: bool) -> None:
        self._path = path
        self._loader = loader
        self._single = single
        self._stack: list[_Frame] = []
        self._done: list[tuple[yaml.Node, object]] = []

    def documents(self) -> list[tuple[yaml.Node, object]]:
        next_event: Callable[[], Any] = self._loader.get_event
        while (kind := (event := next_event()).__class__) is not yaml.StreamEndEvent:
            if kind is yaml.AliasEvent or getattr(event, "anchor", None) is not None:
                line = event.start_mark.line + 1
                raise self._error(line, ANCHORS.format(line=line))
            if kind is yaml.ScalarEvent:
                self._add(*self._scalar(event))
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                self._open(event)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = self._stack.pop()
                frame.node.end_mark = event.end_mark
                self._add(frame.node, frame.value)
            elif kind is yaml.DocumentStartEvent and self._done and self._single:
                line = next_event().start_mark.line + 1
                raise self._error(line, "expected one YAML document, found several")
        return [(node, value) for node, value in self._done if value is not None]

    def _open(self, event: Any) -> None:
        line = event.start_mark.line + 1
        if len(self._stack) >= MAX_DEPTH:
            message = f"nested more than {MAX_DEPTH} levels deep (line {line}): flatten it"
            raise self._error(line, message)
        node: yaml.Node
        value: dict[str, object] | list[object]
        mark: Any = event.start_mark
        if event.__class__ is yaml.MappingStartEvent:
            node, value = yaml.MappingNode("tag:yaml.org,2002:map", [], mark), {}
        else:
            node, value = yaml.SequenceNode("tag:yaml.org,2002:seq", [], mark), []
        self._stack.append(_Frame(node, value))

    def _scalar(self, event: Any) -> tuple[yaml.ScalarNode, object]:
        text, tag, value = event.value, event.tag, _OTHER
        if tag is None or tag == "!":
            memo = _implicit if len(text) <= _MEMO_LENGTH else _implicit.__wrapped__
            tag, value = memo(text, event.implicit)
        node = yaml.ScalarNode(tag, text, event.start_mark, event.end_mark, event.style)
        if tag == _MERGE and self._stack and self._stack[-1].key is None:
            if isinstance(self._stack[-1].value, dict):
                raise self._at(node, "merge keys (<<) are not supported")
        if value is not _OTHER:
            return node, value
        constructor = SafeConstructor()
        try:
            return node, constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            raise self._at(node, f"invalid value: {exc.problem}") from exc

    def _add(self, node: yaml.Node, value: object) -> None:
        if not self._stack:
            self._done.append((node, value))
            return
        frame = self._stack[-1]
        if isinstance(frame.value, list):
            assert isinstance(frame.node.value, list)
            frame.node.value.append(node)
            frame.value.append(value)
        elif frame.key is None:
            if not isinstance(value, str):
                raise self._at(node, f"keys must be strings, not {value!r}")
            if value in frame.value:
                raise self._at(node, f"duplicate key {value!r}")
            frame.key = value
            frame.node.value.append((node, None))
        else:
            key_node = frame.node.value[-1][0]
            frame.node.value[-1] = (key_node, node)
            frame.value[frame.key] = value
            frame.key = None

    def _at(self, node: yaml.Node, message: str) -> YamlError:
        mark: Any = node.start_mark
        return self._error(mark.line + 1, message)

    def _error(self, line: int, message: str) -> YamlError:
        return YamlError(Problem(self._path, line, "", message))
