"""`ctr --version` prints the installed distribution's name and version: pyproject.toml's."""

from __future__ import annotations

import tomllib

from typer.testing import CliRunner

from cli.main import app
from tests.support.checkout import ROOT


def test_version_is_pyproject_s() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    done = CliRunner().invoke(app, ["--version"])
    assert done.exit_code == 0 and done.output == f"{project['name']} {project['version']}\n"
