"""A latency histogram in the HDR style: log-spaced buckets with a bounded relative error.

Values (microseconds) go into bucket ``floor(log(v) / log(1 + precision))``, so every recorded value
is within ``precision`` (1% by default) of the value its bucket reports, from a microsecond to hours,
in a few hundred integer counters; histograms from several runs merge by adding counts.
"""

from __future__ import annotations

import math
from collections import Counter


class LatencyHistogram:
    def __init__(self, precision: float = 0.01) -> None:
        if not 0 < precision < 1:
            raise ValueError(f"precision must be in (0, 1), not {precision}")
        self.precision = precision
        self._log_base = math.log1p(precision)
        self.counts: Counter[int] = Counter()
        self.count = 0
        self.max_us = 0.0

    def record(self, value_us: float) -> None:
        self.counts[int(math.log(max(value_us, 1.0)) / self._log_base)] += 1
        self.count += 1
        self.max_us = max(self.max_us, value_us)

    def merge(self, other: LatencyHistogram) -> None:
        self.counts.update(other.counts)
        self.count += other.count
        self.max_us = max(self.max_us, other.max_us)

    def percentile(self, q: float) -> float:
        """The value (µs) at quantile ``q`` in [0, 100]: the upper edge of the bucket holding it."""
        if not self.count:
            return math.nan
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min(math.exp((index + 1) * self._log_base), self.max_us)
        return self.max_us

    def summary_ms(self) -> dict[str, float]:
        return {
            name: round(self.percentile(q) / 1000, 3)
            for name, q in (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99), ("p99_9_ms", 99.9))
        } | {"max_ms": round(self.max_us / 1000, 3)}
