"""A day's metrics of an auction pipeline with every key the auction's report reads, for the report's tests
without a run."""

from __future__ import annotations

from clients.auction.report import MEANS, SLOT_MEANS, SLOT_SUMS, SUMS


def day(welfare: float) -> dict:
    """A day's metrics with every key the report reads (two slots)."""
    metrics: dict = dict.fromkeys(SUMS, 1.0) | dict.fromkeys(MEANS, 1.0)
    metrics |= {key: [1.0, 1.0] for key in (*SLOT_SUMS, *SLOT_MEANS)}
    return metrics | {"welfare": welfare, "errors": 0, "model_versions": {}}
