"""Per-model serving settings: the ``[serving]`` table of ``models/<name>/config.toml``.

```toml
[serving]
max_batch_size = 1024       # items (candidates) per ONNX Runtime run
max_queue_delay_us = 500    # longest wait for a batch to fill, while other requests are expected
max_queue_items = 16384     # queued items beyond this are answered 503 at once
instances = 1               # batches run at once on the model's session
inline_max_items = 0        # batches of at most this many items run on the event loop (0: none)
version_policy = { latest = 1 }   # or { specific = [1, 3] }, or { all = true }
```
A model without a config file or without the table takes these defaults; a misspelt table name
(``[servng]``) is refused, and so is a ``max_queue_delay_us`` as long as the request deadline
(``CTR_REQUEST_TIMEOUT_MS``), with batching on: every request waiting for company would be answered 504.
A bad value is a ValueError naming the key, and so is a key that is none of these (``max_batch_sise = 64`` was ignored
without a word, the default serving instead), so the model is refused with a clear reason.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from common.config_layout import TOP_LEVEL
from common.config_table import did_you_mean
from common.repository import CONFIG_FILE, read_config
from service.batching.policy import BatchConfig

# The [serving] keys that set a BatchConfig field: its integers, except what the service settings decide
INTEGER_KEYS = tuple(f.name for f in fields(BatchConfig) if f.type in ("int", int) and f.name != "retry_after_s")
ZERO_ALLOWED = frozenset({"max_queue_delay_us", "inline_max_items"})  # where 0 means something: no wait, no inline run
SERVING_KEYS = tuple(sorted((*INTEGER_KEYS, "version_policy")))  # every key [serving] may hold
POLICIES = ("all", "latest", "specific")


@dataclass(frozen=True)
class VersionPolicy:
    """Which published versions to serve: the newest ``latest`` that load, or exactly ``specific``."""

    latest: int | None = 1
    specific: tuple[int, ...] = ()

    def select(self, available: list[int]) -> list[int]:
        """The versions to try, newest first (with ``latest``, more than N: refused ones are skipped)."""
        if self.specific:
            return sorted((v for v in self.specific if v in available), reverse=True)
        return sorted(available, reverse=True)

    @property
    def wanted(self) -> int | None:
        """How many versions to serve (None: every one the policy selects)."""
        return None if self.specific else self.latest

    @classmethod
    def parse(cls, raw: Any) -> VersionPolicy:
        if not isinstance(raw, Mapping) or len(raw) != 1:
            raise ValueError("serving.version_policy must be one of {latest = N}, {specific = [...]}, {all = true}")
        ((key, value),) = raw.items()
        if key not in POLICIES:
            raise ValueError(f"serving.version_policy: unknown policy {key!r} (known: {', '.join(POLICIES)})")
        if key == "latest":
            if type(value) is not int or value < 1:
                raise ValueError(f"serving.version_policy.latest must be a positive integer, not {value!r}")
            return cls(latest=value)
        if key == "specific":
            if not isinstance(value, list) or not value or any(type(v) is not int or v < 1 for v in value):
                raise ValueError(f"serving.version_policy.specific must list positive versions, not {value!r}")
            return cls(latest=None, specific=tuple(sorted(set(value))))
        if value is not True:
            raise ValueError(f"serving.version_policy.all must be true, not {value!r}")
        return cls(latest=None)


@dataclass(frozen=True)
class ServingConfig:
    batch: BatchConfig = field(default_factory=BatchConfig)
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)

    @classmethod
    def from_table(
        cls, table: Mapping[str, Any], batching: bool = True, deadline_ms: float | None = None
    ) -> ServingConfig:
        unknown = sorted(set(table) - set(SERVING_KEYS))
        if unknown:
            named = ", ".join(f"serving.{key}" for key in unknown)
            verb = "is not a setting" if len(unknown) == 1 else "are not settings"
            raise ValueError(f"{named} {verb}{did_you_mean(unknown, SERVING_KEYS)} (known: {', '.join(SERVING_KEYS)})")
        values: dict[str, Any] = {}
        for key in INTEGER_KEYS:
            if key in table:
                value = table[key]
                if type(value) is not int or value < (0 if key in ZERO_ALLOWED else 1):
                    kind = "a non-negative" if key in ZERO_ALLOWED else "a positive"
                    raise ValueError(f"serving.{key} must be {kind} integer, not {value!r}")
                values[key] = value
        batch = BatchConfig(**values, enabled=batching)
        if batch.max_queue_items < batch.max_batch_size:
            raise ValueError(
                f"serving.max_queue_items ({batch.max_queue_items}) must hold one full batch "
                f"(max_batch_size {batch.max_batch_size})"
            )
        # A batch waits up to max_queue_delay_us for company, so a wait as long as the request deadline answers
        # every request of a busy model 504 while the model reports ready; refused, the older version keeps
        # serving. Batching off, the wait is never taken.
        if batching and deadline_ms is not None and batch.max_queue_delay_us >= deadline_ms * 1000:
            raise ValueError(
                f"serving.max_queue_delay_us ({batch.max_queue_delay_us} µs) must be less than the request deadline "
                f"CTR_REQUEST_TIMEOUT_MS ({deadline_ms:g} ms = {deadline_ms * 1000:.0f} µs): a batch waiting that long "
                "to fill answers its requests 504"
            )
        policy = VersionPolicy.parse(table["version_policy"]) if "version_policy" in table else VersionPolicy()
        return cls(batch, policy)


def read_serving_config(
    root: Path, name: str, batching: bool = True, deadline_ms: float | None = None
) -> ServingConfig:
    """The model's ``[serving]`` settings (defaults without a config file); ValueError when invalid (with
    ``deadline_ms``, the service's request deadline, a ``max_queue_delay_us`` at least as long too), or
    when the file's top level holds a name close to ``serving`` that no config.toml has (``[servng]``,
    which was never read: the model served with the defaults without a word). Other names are the
    trainer's to check (common/config_layout.py): a table a newer trainer writes must not stop a service."""
    try:
        raw = read_config(root, name)
    except FileNotFoundError:
        return ServingConfig(BatchConfig(enabled=batching))
    misspelt = [  # close to it, not merely alike: a newer trainer's [service] or [scoring] is not refused
        key for key in raw if key not in TOP_LEVEL and difflib.get_close_matches(key.lower(), ["serving"], cutoff=0.8)
    ]
    if misspelt:
        raise ValueError(
            f"{root / name / CONFIG_FILE}: [{misspelt[0]}] is no table of config.toml (did you mean [serving]?)"
        )
    table = raw.get("serving", {})
    if not isinstance(table, Mapping):
        raise ValueError("[serving] must be a table")
    return ServingConfig.from_table(table, batching, deadline_ms)
