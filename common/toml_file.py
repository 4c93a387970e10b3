"""Reading a TOML file (a model's config.toml, a feature spec): a syntax error names the file.

``tomllib`` says where in the text it stopped (line and column) but not which file it was reading, so
``ctr train`` on a spec with a typo printed a line and column with no path.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from common.regular_file import regular_file


def read_toml(path: str | Path, regular_only: bool = False) -> dict[str, Any]:
    """The file's table; ValueError naming ``path`` when it is not valid TOML (FileNotFoundError as is).
    ``regular_only`` (a model repository's config.toml): NotRegularFile at once where ``path`` is a FIFO, a
    device or a socket, which ``open`` waits on; a file the user names may be one (``--spec <(...)``)."""
    with regular_file(path) if regular_only else open(path, "rb") as file:
        try:
            return tomllib.load(file)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:  # a binary file said only which byte
            raise ValueError(f"{path} is not valid TOML: {error}") from None
