"""Mean ± std over runs (seeds, initialisations, loops), the same for every experiment's report.

The std is the sample standard deviation (ddof 1), the usual estimate of the spread between runs; the
population one (ddof 0) understates it for a few runs (x0.82 for 3, x0.95 for 10). One run has no
spread to estimate: its std is None (null in the JSON), not 0, and is shown without a ±.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# what a report's std fields are, written into each report (``std_kind``); reports/sample_std_from_population.py
# converted the committed reports written before, whose std was the population one, and marked them so
STD_KIND = "sample (ddof 1)"


def mean_std(values: Sequence[float]) -> dict[str, float | None]:
    """Mean and sample standard deviation (ddof 1) over runs; the deviation of one run is unknown (None), not 0."""
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if array.size > 1 else None}


def plus_minus(summary: dict[str, float | None], digits: int, separator: str = " ± ", scale: float = 1.0) -> str:
    """``summary``'s "mean ± std" to ``digits`` decimals (times ``scale``); the mean alone when std is None."""
    mean, std = summary["mean"], summary["std"]
    assert mean is not None
    spread = f"{separator}{scale * std:.{digits}f}" if std is not None else ""
    return f"{scale * mean:.{digits}f}{spread}"
