"""A model config's TOML text with some keys of one table replaced: how the auction writes the configs its
pipelines' and its retriever's models train with (the committed ones, with settings sized to its windows)."""

from __future__ import annotations

import tomllib
from typing import Any


def with_overrides(text: str, table: str, overrides: dict[str, Any]) -> str:
    """A config's TOML text with keys of ``[table]`` replaced (written right under its header)."""
    out: list[str] = []
    current, written = "", False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.split("]")[0].strip("[ ")
            out.append(line)
            if current == table:
                out += [f"{key} = {_toml_value(value)}" for key, value in overrides.items()]
                written = True
            continue
        if current == table and stripped.split("=", 1)[0].strip() in overrides:
            continue  # replaced above
        out.append(line)
    if not written:
        out += ["", f"[{table}]", *(f"{key} = {_toml_value(value)}" for key, value in overrides.items())]
    result = "\n".join(out) + "\n"
    written_table = tomllib.loads(result).get(table, {})
    if any(written_table.get(key) != value for key, value in overrides.items()):
        raise ValueError(f"could not override [{table}] {overrides} in a model config")
    return result


def _toml_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)
