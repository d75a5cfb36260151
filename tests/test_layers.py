"""The import graph points one way: ledger/ <- projections/ <- consumers/ <- app/ (and never back)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each package, and the packages above it that it must never import (lazily inside a function neither).
ABOVE = {
    "ledger": {"projections", "consumers", "app"},
    "projections": {"consumers", "app"},
    "consumers": {"app"},
}


def imported(path: Path) -> set[str]:
    """The top-level package of every absolute import anywhere in the module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ABOVE))
def test_no_package_imports_a_layer_above_it(package: str) -> None:
    """No module of ledger/ imports app, projections or consumers; none of projections/ imports
    consumers or app; none of consumers/ imports app."""
    modules = sorted((ROOT / package).glob("*.py"))
    assert modules, f"no modules found under {package}/"
    upward = {
        str(path.relative_to(ROOT)): sorted(imported(path) & ABOVE[package])
        for path in modules
        if imported(path) & ABOVE[package]
    }
    assert upward == {}


def test_imported_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The check reads imports nested in functions too, the way lazy CLI imports were written."""
    module = tmp_path / "lazy.py"
    module.write_text(
        "import os\n\ndef late():\n    from app.bootstrap import Services\n    import consumers.kafka\n"
    )
    assert imported(module) == {"os", "app", "consumers"}
