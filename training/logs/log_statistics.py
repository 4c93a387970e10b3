"""What a trainer must know about a whole log before its first step, fitted in one streaming pass.

The numeric features' means and standard deviations (the spec's statistics, DESIGN.md §2) and the
CTR of each position (b of Moore et al. 2018), over every row of the log, as the in-memory trainer
fits them. Each row group contributes a small partial summary; summaries merge exactly (counts and
sums; means and squared deviations by Chan et al.'s pairwise update), in row-group order, so the
result does not depend on how many processes shared the pass. The result is saved as JSON beside the
checkpoint and can be read back instead of streaming the log again (``--statistics``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from common.encoder import (  # the encoder's own reading of a numeric column
    MIN_STD,
    numeric_values,
    training_range,
    unlogged_stats,
    warn_if_one_value_dominates,
)
from common.features import FeatureSpec, NumericStats
from common.whole_file import written_whole
from training.logs.column_arrays import column_array
from training.logs.feature_checks import check_features
from training.logs.label_checks import check_labels
from training.logs.log_quality import Disorder, say_log_quality
from training.logs.log_time import say_ts_left_out
from training.logs.stream import ShardedLogs

logger = logging.getLogger(__name__)


@dataclass
class Moments:
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    # the smallest and largest value (the feature's training range); None with no value, and in a
    # statistics.json written before ranges were kept (a model trained on it clips at none)
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:  # a hand-edited statistics.json: merge and the range read both or neither
        if (self.low is None) != (self.high is None) or (self.low is not None and self.low > self.high):
            raise ValueError(f"a range needs both low and high, low <= high (low {self.low}, high {self.high})")

    def merge(self, other: Moments) -> Moments:
        if not other.count:
            return replace(self)
        if not self.count:
            return replace(other)
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / count
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        ranged = None not in (self.low, other.low)
        low = min(self.low, other.low) if ranged else None
        high = max(self.high, other.high) if ranged else None
        return Moments(count, mean, m2, low, high)


@dataclass
class LogStatistics:
    rows: int = 0
    moments: dict[str, Moments] = field(default_factory=dict)  # numeric features
    impressions: dict[int, int] = field(default_factory=dict)  # by position
    clicks: dict[int, int] = field(default_factory=dict)  # by position
    # the shards they were fitted on, (file name, bytes) each (ShardedLogs.identity); [] while being merged
    logs: list[tuple[str, int]] = field(default_factory=list)
    # numeric feature -> its transform, where its moments are of transformed values (common/numeric_transform.py):
    # read back under a spec whose transform differs, they would be of other units ({} in a file written before)
    transforms: dict[str, str] = field(default_factory=dict)
    # the log's time order and doubled impressions, for the warnings of the run that made the pass (not
    # saved: a run that reads statistics.json back warns of the numeric features alone)
    disorder: Disorder = field(default_factory=Disorder, compare=False)

    def merge(self, other: LogStatistics) -> LogStatistics:
        names = list(dict.fromkeys([*self.moments, *other.moments]))
        positions = sorted({*self.impressions, *other.impressions})
        return LogStatistics(
            rows=self.rows + other.rows,
            moments={n: self.moments.get(n, Moments()).merge(other.moments.get(n, Moments())) for n in names},
            impressions={p: self.impressions.get(p, 0) + other.impressions.get(p, 0) for p in positions},
            clicks={p: self.clicks.get(p, 0) + other.clicks.get(p, 0) for p in positions},
            disorder=self.disorder.then(other.disorder),
        )

    def check_transforms(self, spec: FeatureSpec, path: Path) -> None:
        """Refuses statistics read back (``path``) whose moments were fitted under another transform than
        ``spec`` gives a feature: raw counts' mean and std applied to their logarithms, or the reverse, would
        train a model on values squashed or clipped, and nothing would say so."""
        for feature in spec.numeric:
            fitted = self.transforms.get(feature.name)
            if feature.name in self.moments and fitted != feature.transform:
                raise ValueError(
                    f"{path} was fitted with {_transform_words(fitted)} for numeric feature {feature.name!r}, the spec "
                    f"now says {_transform_words(feature.transform)}: its statistics are of other values; train "
                    "without --statistics"
                )

    def position_ctr(self) -> dict[int, float]:
        return {p: self.clicks[p] / n for p, n in self.impressions.items()}

    def fitted(self, spec: FeatureSpec) -> FeatureSpec:
        """``spec`` with these statistics (the same rules as common.encoder.fit_statistics)."""
        stats = {}
        for feature in spec.numeric:
            moments = self.moments.get(feature.name, Moments())
            if not moments.count:  # never logged: the default encodes as 0, its range too
                stats[feature.name] = unlogged_stats(feature)
                continue
            std = math.sqrt(max(moments.m2, 0.0) / moments.count)
            low, high = (None, None) if moments.low is None else training_range(feature, moments.low, moments.high)
            stats[feature.name] = NumericStats(mean=moments.mean, std=std if std > MIN_STD else 1.0, low=low, high=high)
        return spec.with_stats(stats)

    def warn_of_log_quality(self, spec: FeatureSpec, logs: ShardedLogs) -> None:
        """The in-memory trainer's warnings about its log, in its words (``say_log_quality``: time order,
        doubled impressions, optional features no shard has a column for; a numeric value dominating its
        feature's spread, from the merged moments), each once for the whole log."""
        if logs.ts_left_out:
            say_ts_left_out(logs.path, logs.ts_left_out)
        say_log_quality(self.disorder, logs.names, spec, logs.path, logs.file_rows)
        unranged = [
            f.name
            for f in spec.numeric
            if self.moments.get(f.name, Moments()).count and self.moments[f.name].low is None
        ]
        if unranged:  # a statistics.json of an earlier run (--statistics): the model would clip nothing, silently
            logger.warning(
                "the statistics read back hold no training range for %s (written before ranges were kept): the model "
                "will not clip a served value outside what it was trained on; train without --statistics to fit them",
                unranged,
            )
        for feature in spec.numeric:
            moments = self.moments.get(feature.name, Moments())
            if moments.count and moments.low is not None:
                mean, std = moments.mean, math.sqrt(max(moments.m2, 0.0) / moments.count)
                farthest = max(moments.low, moments.high, key=lambda value: abs(value - mean))
                warn_if_one_value_dominates(feature.name, moments.count, farthest, moments.m2, mean, std)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "rows": self.rows,
            "moments": {n: asdict(m) for n, m in self.moments.items()},
            "impressions": {str(p): n for p, n in self.impressions.items()},
            "clicks": {str(p): n for p, n in self.clicks.items()},
            "logs": [list(entry) for entry in self.logs],
            "transforms": self.transforms,
        }
        with written_whole(path) as temporary:
            temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> LogStatistics:
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(
                rows=int(payload["rows"]),
                moments={n: Moments(**m) for n, m in payload["moments"].items()},
                impressions={int(p): int(n) for p, n in payload["impressions"].items()},
                clicks={int(p): int(n) for p, n in payload["clicks"].items()},
                logs=[(str(name), int(size)) for name, size in payload.get("logs", [])],  # absent before stop 43
                transforms={str(n): str(t) for n, t in payload.get("transforms", {}).items()},  # absent: raw values
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:  # JSON, a field missing or malformed
            raise ValueError(
                f"{path} is not the statistics.json of a streamed run ({type(error).__name__}: {error})"
            ) from None


def chunk_statistics(logs: ShardedLogs, group: int, spec: FeatureSpec) -> LogStatistics:
    """The summary of one row group; refuses wrong labels and feature values (``check_labels``,
    ``check_features``, as the in-memory reader), naming the file. Every streamed run makes this pass over
    every row group, or reads its result back from a run on the same shards (``--statistics``)."""
    numeric = [f for f in spec.numeric if f.name in logs.columns]
    span = logs.spans(int(logs.offsets[group]), int(logs.offsets[group + 1]))[0]
    table = logs.read(span, [*logs.columns, *logs.order_columns])
    source, rows = logs.where(span)
    check_labels(table, source, rows)
    check_features(table, spec, source, rows)
    moments = {}
    for feature in numeric:
        values = numeric_values(feature, column_array(table, feature.name), table.num_rows)
        if values.size:
            mean = float(values.mean())
            m2 = float(((values - mean) ** 2).sum())
            moments[feature.name] = Moments(int(values.size), mean, m2, float(values.min()), float(values.max()))
    position = np.asarray(column_array(table, "position"), dtype=np.int64)
    click = np.asarray(column_array(table, "click"), dtype=np.int64)
    slots, index = np.unique(position, return_inverse=True)
    shown = np.bincount(index, minlength=slots.size)
    clicked = np.bincount(index, weights=click, minlength=slots.size)
    return LogStatistics(
        rows=table.num_rows,
        moments=moments,
        impressions={int(p): int(n) for p, n in zip(slots, shown, strict=True)},
        clicks={int(p): int(c) for p, c in zip(slots, clicked, strict=True)},
        disorder=Disorder.of(table),
    )


def merge_in_order(partials: Sequence[tuple[int, LogStatistics]]) -> LogStatistics:
    """Row-group summaries merged in row-group order (the same result however they were shared out)."""
    merged = LogStatistics()
    for _, partial in sorted(partials, key=lambda item: item[0]):
        merged = merged.merge(partial)
    return merged


def _transform_words(transform: str | None) -> str:
    """A transform as the spec writes it, or that there is none (not ``transform = None``, which no spec says)."""
    return "no transform" if transform is None else f'transform = "{transform}"'
