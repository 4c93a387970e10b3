"""The JSON report every `ctr` command that measures something writes: its folder made, one trailing newline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(out: Path, report: dict[str, Any], sort_keys: bool = False) -> None:
    """Write ``report`` to ``out`` as indented JSON; ``sort_keys`` for reports whose order means nothing."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=sort_keys) + "\n")
