"""YAML parsing that keeps line numbers and refuses what PyYAML would silently accept."""

from __future__ import annotations

import pytest

from cellops.spec.yamldoc import MAX_DEPTH, YamlError, parse_yaml, parse_yaml_stream

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
        (b"base: {x: 1}\nother:\n  <<: {x: 2}\n", 3, "merge keys"),
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


LAUGHS = b"""\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (b"x: &a [*a]\n", 1),  # recursive: a RecursionError before
        (b"spec:\n  x: &a\n    y: [*a]\n", 2),
        (LAUGHS, 1),  # a billion laughs: 387M strings before
        (b"a: 1\nb: &anchor 2\n", 2),  # an anchor alone is refused too
        (b"a: 1\nb: *nowhere\n", 2),
    ],
)
def test_anchors_and_aliases_are_refused_before_expansion(text: bytes, line: int) -> None:
    with pytest.raises(YamlError) as caught:
        parse_yaml("f.yaml", text)
    problem = caught.value.problem
    assert problem.line == line
    assert problem.message == (
        f"YAML anchors and aliases are not allowed (line {line}): write the value out"
    )


@pytest.mark.parametrize(
    "text",
    [
        b"a: " + b"[" * 5_000 + b"]" * 5_000 + b"\n",  # a RecursionError before
        b"- " * 500_000 + b"x\n",  # libyaml's composer overflowed the C stack
        b"{a: " * 300_000,  # quadratic in libyaml: minutes
        b"a:\n" + b"".join(b" " * i + b"b:\n" for i in range(1, 200)),
    ],
    ids=["flow", "compact", "flow-unclosed", "block"],
)
def test_deep_nesting_is_a_problem_not_a_crash(text: bytes) -> None:
    with pytest.raises(YamlError, match=f"nested more than {MAX_DEPTH} levels deep"):
        parse_yaml("f.yaml", text)


def test_nesting_up_to_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 1
    parsed = parse_yaml("f.yaml", b"a: " + b"[" * depth + b"]" * depth + b"\n")
    value = parsed.data
    for _ in range(depth + 1):
        assert isinstance(value, dict | list)
        value = value["a"] if isinstance(value, dict) else (value[0] if value else None)


def test_oversized_input_is_refused_unread() -> None:
    with pytest.raises(YamlError, match="limited to 1000 bytes"):
        parse_yaml_stream("m.yaml", b"a: 1\n" * 1000, max_bytes=1000)


def test_a_stream_gives_every_non_empty_document() -> None:
    text = b"a: 1\n---\n# empty\n---\nb: [x, !!binary aGk=]\n"
    assert parse_yaml_stream("m.yaml", text) == [{"a": 1}, {"b": ["x", b"hi"]}]
    with pytest.raises(YamlError, match=r"aliases are not allowed \(line 3\)"):
        parse_yaml_stream("m.yaml", b"a: 1\n---\nb: *x\n")


def test_unknown_tags_and_stray_merge_values_are_invalid_values() -> None:
    for text in (b"a: !Ref x\n", b"a: <<\n"):
        with pytest.raises(YamlError, match="invalid value"):
            parse_yaml("f.yaml", text)
