"""The click-and-conversion label: what pCTCVR (pCTR x pCVR) is measured against on every impression, a row both
clicked and converted (a log's conversion is observed after a click alone; label_checks.py refuses one without)."""

from __future__ import annotations

import numpy as np


def click_and_conversion(click: np.ndarray, conversion: np.ndarray) -> np.ndarray:
    """True where a row was clicked and converted (0/1 or boolean labels, one a row)."""
    return np.asarray(click).astype(bool) & np.asarray(conversion).astype(bool)
