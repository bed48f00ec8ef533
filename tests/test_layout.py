"""The one-way import rule of docs/layout.md, checked on the source: a part imports only itself
and the ground floor, and only the CLI stands on every part."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"cmrelay", "cmrelay_cli", "ingest", "worker", "admin", "sandbox", "tests", "bench"}
ALLOWED = {
    "cmrelay": {"cmrelay"},
    "ingest": {"cmrelay", "ingest"},
    "worker": {"cmrelay", "worker"},
    "admin": {"cmrelay", "admin"},
    "sandbox": {"cmrelay", "sandbox"},
    "cmrelay_cli": {"cmrelay", "cmrelay_cli", "ingest", "worker", "admin", "sandbox"},
}


def imported_packages(package: str) -> dict[str, set[str]]:
    """Top-level project packages each file of `package` imports (lazy imports included)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names & PROJECT
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_the_layout_allows(package: str) -> None:
    wrong = {
        path: sorted(names - ALLOWED[package])
        for path, names in imported_packages(package).items()
        if names - ALLOWED[package]
    }
    assert not wrong, f"imports against docs/layout.md: {wrong}"


def test_no_test_double_lives_in_the_product() -> None:
    product = [p for package in ALLOWED for p in (ROOT / package).rglob("*.py")]
    doubles = [str(p.relative_to(ROOT)) for p in product if "recording" in p.name]
    assert not doubles
