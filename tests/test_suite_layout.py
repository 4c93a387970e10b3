"""No file of the test suite imports a test module: what several test modules share lives in tests/support/ (or a
conftest.py, for a fixture), where it is found by its name.

Importing a test module from another ran its module-level code (its fixtures, its marks, its imports) for
the importer, tied the two files together, and hid the shared helper in a file named for other tests."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def is_test_module(name: str) -> bool:
    return any(part.startswith("test_") for part in name.split("."))


def imports_of_test_modules(path: Path) -> list[str]:
    """ "LINE: MODULE" for each import statement of ``path`` (at module level or inside a function) that imports a
    test module: ``import``, ``from MODULE import ...`` (relative ones as written after their dots), or ``from
    PACKAGE import test_x``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: {alias.name}" for alias in node.names if is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            modules = [module] if is_test_module(module) else [f"{module}.{alias.name}" for alias in node.names]
            found += [f"{node.lineno}: {name}" for name in modules if is_test_module(name)]
    return found


def test_no_file_under_tests_imports_a_test_module() -> None:
    imports = [
        f"{path.relative_to(TESTS.parent)}:{found}"
        for path in sorted(TESTS.rglob("*.py"))
        for found in imports_of_test_modules(path)
    ]
    assert imports == [], "move what is shared into tests/support/ (a fixture: a conftest.py):\n" + "\n".join(imports)
