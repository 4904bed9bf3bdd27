"""YAML documents that remember where each value came from.

PyYAML composes a node graph with marks (line, column); we build plain Python data from it
ourselves so that duplicate keys are errors (PyYAML keeps the last one silently) and so that
any field path can later be mapped back to a line.

Pure: parses bytes it is given; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml
from yaml.constructor import SafeConstructor

from cellops.model.problems import Problem

try:  # libyaml is several times faster; fall back to the pure-Python parser if absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

PathItem = str | int


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
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(Problem(path, None, "", f"not UTF-8 text ({exc.reason})")) from exc
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        raise YamlError(Problem(path, *_syntax_error(text, exc))) from exc
    if len(nodes) > 1:
        line = nodes[1].start_mark.line + 1
        raise YamlError(Problem(path, line, "", "expected one YAML document, found several"))
    root = nodes[0] if nodes else None
    return ParsedYaml(_build(path, root) if root is not None else None, Locator(root))


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


_scalars = SafeConstructor()


def _build(path: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.MappingNode):
        out: dict[object, object] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlError(_at(path, key_node, "merge keys (<<) are not supported"))
            key = _build(path, key_node)
            if not isinstance(key, str):
                raise YamlError(_at(path, key_node, f"keys must be strings, not {key!r}"))
            if key in out:
                raise YamlError(_at(path, key_node, f"duplicate key {key!r}"))
            out[key] = _build(path, value_node)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(path, child) for child in node.value]
    try:
        return _scalars.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        raise YamlError(_at(path, node, f"invalid value: {exc.problem}")) from exc


def _at(path: str, node: yaml.Node, message: str) -> Problem:
    return Problem(path, node.start_mark.line + 1, "", message)
