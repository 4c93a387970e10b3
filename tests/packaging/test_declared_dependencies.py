"""Every third-party module the shipped packages import is installed by the extras they are run with.

The test suite runs with the `cpu`, `train` and `dev` extras installed (`make test`), so an import
that only `dev` provides passes every other test and fails for a user: `ctr auction` once raised
``ModuleNotFoundError: httpx`` after `make run` (`.[cpu,train]`). This reads the imports themselves
(module level and inside functions alike) and checks them against `pyproject.toml`.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.checkout import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SHIPPED = ("common", "service", "training", "clients", "cli")

# What each shipped package may need beyond the base dependencies. The service runs from `.[cpu]` or
# `.[gpu]` (the Docker image), with `grpc` when its gRPC port is asked for; the trainer from `train`;
# the clients and the command line from any extra a user installs for what they run, `dev` excepted
# (the test tools).
EXTRAS_ALLOWED = {
    "common": ("cpu", "gpu"),
    "service": ("cpu", "gpu", "grpc"),
    "training": ("cpu", "gpu", "train"),
    "clients": ("cpu", "gpu", "grpc", "train", "bench"),
    "cli": ("cpu", "gpu", "grpc", "train", "bench"),
}

# Modules that come with a declared requirement rather than one of their own (checked below against the
# provider's metadata): FastAPI is built on Starlette, uvicorn[standard] brings its fast parser and loop.
PROVIDED_BY = {"starlette": "fastapi", "httptools": "uvicorn", "uvloop": "uvicorn"}


def declared(extras: tuple[str, ...]) -> set[str]:
    """Canonical names of the distributions the base dependencies and ``extras`` declare."""
    requirements = list(PROJECT["dependencies"])
    for extra in extras:
        requirements += PROJECT["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(line).name) for line in requirements}


def third_party_imports(package: str) -> Iterator[tuple[str, Path]]:
    """(top-level module, file) for every absolute import of a module outside the stdlib and the project."""
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in SHIPPED and top != "__future__":
                    yield top, path.relative_to(ROOT)


@functools.cache
def installed_modules() -> Mapping[str, list[str]]:
    """Each top-level module installed here and the distributions that install it: a read of every installed
    distribution's file list, made once, where each module's lookup made its own."""
    return importlib.metadata.packages_distributions()


@functools.cache
def distribution_of(module: str) -> str:
    """The distribution that installs ``module`` here; one that is not installed (the `bench` extra's
    peers) is taken to share its module's name."""
    installed = installed_modules().get(module)
    return canonicalize_name(installed[0] if installed else module)


@pytest.mark.parametrize("package", SHIPPED)
def test_every_import_is_declared_for_what_the_package_runs_with(package: str) -> None:
    allowed = declared(EXTRAS_ALLOWED[package])
    undeclared = {
        f"{path}: {module} ({distribution_of(module)})"
        for module, path in third_party_imports(package)
        if distribution_of(module) not in allowed
        and not (module in PROVIDED_BY and canonicalize_name(PROVIDED_BY[module]) in allowed)
    }
    assert not undeclared, (
        f"{package}/ imports what neither the base dependencies nor the extras {EXTRAS_ALLOWED[package]} "
        f"declare: {sorted(undeclared)}"
    )


@pytest.mark.parametrize(("module", "provider"), sorted(PROVIDED_BY.items()))
def test_a_module_taken_as_provided_is_required_by_its_provider(module: str, provider: str) -> None:
    requires = importlib.metadata.requires(provider) or []
    assert distribution_of(module) in {canonicalize_name(Requirement(line).name) for line in requires}
