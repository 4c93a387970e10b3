"""JSON without NaN or infinity: Python's ``json`` writes them as ``NaN`` and ``Infinity``, which are no JSON
(JSON.parse, jq and other languages' readers refuse the whole document); written as null instead."""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by None, in dicts, lists and tuples too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value
