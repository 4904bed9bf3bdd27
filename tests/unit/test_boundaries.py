"""The pure core imports no I/O; third-party clients stay in their adapters (DESIGN.md §4).

Checked on the source text (ast), so it holds for every import, even ones never executed.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "cellops"
PURE = ["model", "spec", "render", "diff", "plan", "health", "tenancy", "dora"]

# What the pure core may import. Everything else (os, subprocess, socket, sqlite3, asyncio,
# time, random, pathlib I/O, pygit2, ...) belongs at the edges.
ALLOWED_STDLIB = {
    "__future__",
    "bisect",
    "collections",
    "dataclasses",
    "decimal",
    "difflib",
    "enum",
    "functools",
    "graphlib",
    "hashlib",
    "ipaddress",
    "itertools",
    "json",
    "math",
    "posixpath",
    "re",
    "types",
    "typing",
    "zlib",  # crc32 only: a stable hash (tenancy/ring.py)
}
ALLOWED_THIRD_PARTY = {"pydantic", "yaml"}
# pathlib only for PurePosixPath (path arithmetic, no file access); urllib only to split a
# URL string (tenancy/checks.py), never urllib.request
ALLOWED_NAMES = {("pathlib", "PurePosixPath"), ("urllib.parse", "urlsplit")}


def _modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, str | None, int]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, alias.name, node.lineno) for alias in node.names]
    return found


@pytest.mark.parametrize(
    "path", [p for pkg in PURE for p in _modules(pkg)], ids=lambda p: str(p.relative_to(SRC))
)
def test_pure_core_imports_no_io(path: Path) -> None:
    bad = []
    for module, name, line in _imports(path):
        top = module.split(".")[0]
        if top == "cellops":
            inner = module.split(".")[1] if "." in module else ""
            if inner not in PURE:
                bad.append(f"{line}: {module} (an edge package)")
        elif (module, name) in ALLOWED_NAMES:
            continue
        elif top in sys.stdlib_module_names:
            if top not in ALLOWED_STDLIB:
                bad.append(f"{line}: {module} (stdlib I/O, clock or environment)")
        elif top not in ALLOWED_THIRD_PARTY:
            bad.append(f"{line}: {module} (third-party)")
    assert not bad, f"{path.relative_to(SRC)} imports what the pure core must not:\n" + "\n".join(
        bad
    )


def test_pure_modules_say_so() -> None:
    silent = []
    for path in (p for pkg in PURE for p in _modules(pkg)):
        text = path.read_text()
        if not text.strip():
            continue  # an empty __init__.py
        if "pure" not in (ast.get_docstring(ast.parse(text)) or "").lower():
            silent.append(str(path.relative_to(SRC)))
    assert not silent, f"module docstrings must state purity: {silent}"


@pytest.mark.parametrize(
    ("client", "adapter"),
    [
        ("pygit2", "source/"),
        ("kubernetes", "backends/kubernetes/"),
        ("kubernetes_validate", "backends/kubernetes/"),
        ("jsonschema", "backends/kubernetes/"),
        ("cryptography", "images/"),
        ("requests", "images/"),
    ],
)
def test_third_party_clients_stay_in_their_adapter(client: str, adapter: str) -> None:
    users = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if any(m.split(".")[0] == client for m, _, _ in _imports(p))
    ]
    assert users and all(u.startswith(adapter) for u in users), users


def test_the_controller_uses_ports_not_adapters() -> None:
    """DESIGN.md §4: the controller talks to backends, store and source via base.py."""
    adapters = (
        "cellops.store.sqlite",
        "cellops.backends.local",
        "cellops.source.git",
        "cellops.wiring",
        "sqlite3",
        "pygit2",
    )
    bad = [
        f"{path.relative_to(SRC)}:{line}: {module}"
        for path in _modules("controller")
        for module, _, line in _imports(path)
        if module.startswith(adapters)
    ]
    assert not bad, bad
