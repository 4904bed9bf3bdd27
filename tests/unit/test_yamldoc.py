"""YAML parsing that keeps line numbers and refuses what PyYAML would silently accept."""

from __future__ import annotations

import pytest

from cellops.spec.yamldoc import YamlError, parse_yaml

DOC = b"""\
apiVersion: v1
spec:
  ports:
    - name: http
      port: 8080
  env: {A: "1", B: "2"}
"""


def test_lines_follow_field_paths() -> None:
    parsed = parse_yaml("f.yaml", DOC)
    assert parsed.locator.line(["spec", "ports", 0, "port"]) == 5
    assert parsed.locator.line(["spec", "ports", 0]) == 4
    assert parsed.locator.line(["spec", "env", "B"]) == 6
    assert parsed.locator.line(["apiVersion"]) == 1


def test_unknown_path_stops_at_the_deepest_known_field() -> None:
    parsed = parse_yaml("f.yaml", DOC)
    assert parsed.locator.line(["spec", "ports", 0, "nope"]) == 4
    assert parsed.locator.line(["spec", "missing"]) == 2


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (b"a: 1\nb: 2\na: 3\n", 3, "duplicate key 'a'"),
        (b"a: [1, 2\nb: 3\n", 2, "invalid YAML"),
        (b"a: 1\n---\nb: 2\n", 3, "one YAML document"),
        (b"base: &b {x: 1}\nother:\n  <<: *b\n", 3, "merge keys"),
        (b"? [1, 2]\n: x\n", 1, "keys must be strings"),
    ],
)
def test_refused_yaml_names_the_line(text: bytes, line: int, fragment: str) -> None:
    with pytest.raises(YamlError) as caught:
        parse_yaml("f.yaml", text)
    assert caught.value.problem.line == line
    assert fragment in caught.value.problem.message


def test_non_utf8_is_refused() -> None:
    with pytest.raises(YamlError, match="not UTF-8"):
        parse_yaml("f.yaml", b"a: \xff\xfe\n")


def test_empty_document_is_none() -> None:
    assert parse_yaml("f.yaml", b"# nothing\n").data is None
