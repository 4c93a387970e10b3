"""The top level of a model's ``config.toml``: its two keys and its tables, and who reads each.

The trainer reads every table, checks its contents and refuses any other name (training/model_config.py).
The service reads ``[serving]`` alone (service/models/config.py): it refuses a name close to it
(``[servng]`` was served with the defaults without a word) and leaves the others to the trainer, so a
table a newer trainer writes does not stop an older service from loading the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.config_table import checked_values
from common.repository import CONFIG_FILE, read_config

TABLES = ("model", "training", "data", "world", "queries", "retrieval", "serving")
TOP_LEVEL: dict[str, Any] = {"kind": str, "evaluation": str, **dict.fromkeys(TABLES, dict[str, Any])}


def checked_top_level(raw: Any, path: Path) -> dict[str, Any]:
    """``raw`` (a parsed config.toml at ``path``) when its top-level names and their types are the
    layout's; ValueError naming ``path``, the name and the nearest known one otherwise."""
    return checked_values(TOP_LEVEL, raw, str(path))


def read_checked_config(root: Path, name: str) -> dict[str, Any]:
    """Model ``name``'s config.toml in ``root`` as read, once ``checked_top_level`` passes it;
    FileNotFoundError naming the path expected and how to create it."""
    path = root / name / CONFIG_FILE
    try:
        return checked_top_level(read_config(root, name), path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no config for model {name!r}: expected {path}; "
            f"create it with `ctr new {name} --kind KIND` (or run from the repository root)"
        ) from None
