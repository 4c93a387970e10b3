"""The JSON report every `ctr` command that measures something writes: its folder made, one trailing newline;
and its lines on the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.finite_json import finite


def write_report(out: Path, report: dict[str, Any], sort_keys: bool = False) -> None:
    """Write ``report`` to ``out`` as indented JSON; ``sort_keys`` for reports whose order means nothing.
    A NaN or infinite number (a ratio of cases not run) is written as null: ``NaN`` is no JSON, and
    JSON.parse and jq refused the file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(finite(report), indent=2, sort_keys=sort_keys, allow_nan=False) + "\n")


def report_lines(report: dict[str, Any]) -> list[str]:
    """``report`` as aligned ``key value`` lines: floats to 4 places, a table of values on one line
    (``auc=0.6313  ece=0.0058``), a table of tables as a heading and a line per entry (the methods of
    ``ctr evaluate ctr``, which printed as one 2 KB line); anything deeper as compact JSON."""
    lines = []
    for key, value in report.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            lines.append(f"{key}:")
            lines.extend(f"  {entry:<26} {_shown(values)}" for entry, values in value.items())
        else:
            lines.append(f"{key:<28} {_shown(value)}")
    return lines


def _shown(value: Any, nested: bool = False) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        if nested:
            return json.dumps(value, separators=(",", ":"))
        return "  ".join(f"{k}={_shown(v, nested=True)}" for k, v in value.items())
    return str(value)
