"""Reading a TOML file (a model's config.toml, a feature spec): a syntax error names the file.

``tomllib`` says where in the text it stopped (line and column) but not which file it was reading, so
``ctr train`` on a spec with a typo printed a line and column with no path.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def read_toml(path: str | Path) -> dict[str, Any]:
    """The file's table; ValueError naming ``path`` when it is not valid TOML (FileNotFoundError as is)."""
    with open(path, "rb") as file:
        try:
            return tomllib.load(file)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:  # a binary file said only which byte
            raise ValueError(f"{path} is not valid TOML: {error}") from None
