"""Feature spec: which raw features a model reads, how each is encoded, and its fitted statistics.

The spec is the contract between a log (or a request) and a model's input tensors (DESIGN.md §2).
Users write it as TOML (``[[feature]]`` tables); it travels inside ``model.json`` with the statistics
fitted on the training logs, so the service encodes exactly as the trainer did.

Each feature is
- ``categorical``: its value (a string or an integer) is hashed into ``buckets`` with a stable hash;
- ``numeric``: a float, standardised with the stored mean and standard deviation (of ``log(1 + x)`` where the
  feature says ``transform = "log1p"``: counts with a heavy tail, common/numeric_transform.py);
and sits on the ``context`` side (one value per request: user, query, page) or the ``candidate``
side (one value per ad). A feature is required, or optional with a ``default`` used when it is
absent (numeric NaN takes the default too).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from common.config_table import checked_table
from common.log_columns import RESERVED_COLUMNS
from common.numeric_transform import DOMAIN_LOW, in_domain, outside_domain
from common.toml_file import read_toml

Kind = Literal["categorical", "numeric"]
Side = Literal["context", "candidate"]

MAX_CATEGORY_CHARS = 1024  # the longest categorical text value: the service's default CTR_MAX_STRING_CHARS
MISSING_CATEGORY = "__missing__"  # the default value of an optional categorical feature


@dataclass(frozen=True)
class Feature:
    name: str
    kind: Kind
    side: Side
    buckets: int = 0  # categorical only: size of the hashed id space of this feature
    required: bool = True  # an absent required feature is an input error
    default: str | float | None = None  # used when an optional feature is absent (raw units)
    transform: str | None = None  # numeric only: "log1p" standardises log(1 + x) (common/numeric_transform.py)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"feature name {self.name!r} must be an identifier (letters, digits, _)")
        if self.kind not in ("categorical", "numeric"):
            raise ValueError(f"feature {self.name!r}: kind must be 'categorical' or 'numeric', not {self.kind!r}")
        if self.side not in ("context", "candidate"):
            raise ValueError(f"feature {self.name!r}: side must be 'context' or 'candidate', not {self.side!r}")
        if self.kind == "categorical" and self.buckets < 1:
            raise ValueError(f"categorical feature {self.name!r} needs buckets >= 1")
        if self.kind == "numeric" and self.buckets:
            raise ValueError(f"numeric feature {self.name!r} takes no buckets")
        if self.transform is not None and (self.kind != "numeric" or self.transform not in DOMAIN_LOW):
            raise ValueError(
                f"feature {self.name!r}: transform must be one of {sorted(DOMAIN_LOW)} on a numeric feature, "
                f"not {self.transform!r} on a {self.kind} one"
            )
        if self.default is None:
            object.__setattr__(self, "default", MISSING_CATEGORY if self.kind == "categorical" else 0.0)
        if self.kind == "numeric":
            default = float(self.default)
            if not math.isfinite(default):
                raise ValueError(f"numeric feature {self.name!r}: default must be finite")
            object.__setattr__(self, "default", default)
            if self.transform is not None and not in_domain(self.transform, default):
                raise ValueError(f"numeric feature {self.name!r}: default {outside_domain(self.transform)}")
        else:
            object.__setattr__(self, "default", str(self.default))


def _entry_name(entry: Any, number: int) -> str:
    """How a message names a spec's ``number``-th entry: by its name where it has one."""
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"[[feature]] {name!r}" if isinstance(name, str) else f"[[feature]] number {number}"


@dataclass(frozen=True)
class NumericStats:
    mean: float
    std: float  # never 0: a constant column is stored with std 1
    # The range of the training values and the feature's default: the encoder clips a value to it, so a
    # price in cents or an age in days gets the model's answer at the edge of what it was trained on, not a
    # saturated 0 or 1 (common/encoder.py). None in a spec fitted before ranges were kept: no such clip.
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:  # a spec's hand-written stats: 0 or -1 standardised every value to ±inf
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"mean must be a finite number and std a positive one, not {self.mean} and {self.std}")
        if (self.low, self.high) == (None, None):
            return
        if not (_is_number(self.low) and _is_number(self.high) and self.low <= self.high):
            raise ValueError(
                f"low and high must be finite numbers with low <= high, or both absent, not {self.low} and {self.high}"
            )

    def to_dict(self) -> dict[str, float]:
        """As model.json holds it: a range that was never fitted is left out."""
        return {name: value for name, value in asdict(self).items() if value is not None}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class FeatureSpec:
    features: tuple[Feature, ...]
    stats: dict[str, NumericStats] = field(default_factory=dict)  # fitted, numeric features only

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"feature spec names {duplicated} more than once")
        if not self.features:
            raise ValueError("feature spec lists no features")
        unknown = set(self.stats) - {f.name for f in self.numeric}
        if unknown:
            raise ValueError(f"statistics given for {sorted(unknown)}, which are not numeric features")

    @property
    def categorical(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.kind == "categorical")

    @property
    def numeric(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.kind == "numeric")

    @property
    def by_name(self) -> dict[str, Feature]:
        return {f.name: f for f in self.features}

    @property
    def total_buckets(self) -> int:
        return sum(f.buckets for f in self.categorical)

    @property
    def is_fitted(self) -> bool:
        return all(f.name in self.stats for f in self.numeric)

    def with_stats(self, stats: dict[str, NumericStats]) -> FeatureSpec:
        return replace(self, stats=dict(stats))

    def for_side(self, side: Side) -> FeatureSpec:
        """The features of one side (e.g. a two-tower model's query or item tower), with their stats."""
        chosen = tuple(f for f in self.features if f.side == side)
        if not chosen:
            raise ValueError(f"feature spec has no {side} features")
        names = {f.name for f in chosen}
        return FeatureSpec(chosen, {n: s for n, s in self.stats.items() if n in names})

    # -- serialisation: plain dicts for model.json, TOML files for users -------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [_feature_dict(f) for f in self.features],
            "stats": {name: s.to_dict() for name, s in self.stats.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        features = data.get("features", data.get("feature"))
        if not isinstance(features, list):
            raise ValueError("feature spec needs a list of features ('features' or [[feature]] tables)")
        parsed = tuple(Feature(**checked_table(Feature, f, _entry_name(f, i))) for i, f in enumerate(features, 1))
        stats = {}
        for name, values in data.get("stats", {}).items():
            section = f"feature spec stats of {name!r}"
            checked = checked_table(NumericStats, values, section)  # an unknown key (p99) named, as for a feature
            try:
                stats[name] = NumericStats(**checked)
            except ValueError as error:
                raise ValueError(f"{section}: {error}") from None
        return cls(parsed, stats)

    @classmethod
    def from_toml(cls, path: str | Path) -> FeatureSpec:
        """A spec a user wrote; ValueError when it names a column of the log format that is not a feature."""
        spec = cls.from_dict(read_toml(path))
        for feature in spec.features:
            if feature.name in RESERVED_COLUMNS:
                raise ValueError(
                    f"{path}: feature {feature.name!r} is a column of the log format, not a feature "
                    f"({RESERVED_COLUMNS[feature.name]}): the trainer reads it as such, and the service would need "
                    "it in every request; remove it from the spec (or rename your column)"
                )
        return spec

    def to_toml(self) -> str:
        lines: list[str] = []
        for f in self.features:
            lines.append("[[feature]]")
            lines.append(f'name = "{f.name}"')
            lines.append(f'kind = "{f.kind}"')
            lines.append(f'side = "{f.side}"')
            if f.kind == "categorical":
                lines.append(f"buckets = {f.buckets}")
            lines.append(f"required = {'true' if f.required else 'false'}")
            if not f.required:
                lines.append(f'default = "{f.default}"' if f.kind == "categorical" else f"default = {f.default}")
            if f.transform is not None:
                lines.append(f'transform = "{f.transform}"')
            lines.append("")
        return "\n".join(lines)


def _feature_dict(feature: Feature) -> dict[str, Any]:
    """A feature as model.json holds it: without a transform, no ``transform`` key, so a spec without one is
    written as before it existed (and read by a service of that time)."""
    entry = asdict(feature)
    if entry["transform"] is None:
        del entry["transform"]
    return entry
