"""Impression logs too large for memory: Parquet shards streamed one row group at a time.

``ShardedLogs`` opens a directory or glob of shards with pyarrow.dataset and lists their row groups
in file order (time order for the simulator's shards), each at its global row offset, so the split
"the latest ``validation_fraction`` of rows are held out" is the same as the in-memory trainer's.

``ImpressionStream`` is the training rows as an IterableDataset: each epoch the row groups are put in
a seeded order, that sequence of rows is cut into equal contiguous parts, one per process (rank),
and each part again into one per DataLoader worker, so no row is read by two of them and every
process takes the same number of steps (DistributedDataParallel needs that). A worker encodes each
row group it reads and mixes rows in a shuffle buffer of ``buffer_rows`` before emitting
minibatches; memory is the buffer plus one row group, whatever the size of the log.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import torch
from torch.utils.data import IterableDataset, get_worker_info

from common.encoder import FeatureEncoder
from common.features import FeatureSpec
from common.log_columns import LABEL_COLUMNS
from common.path_text import path_text
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import validation_cut
from training.logs.arrow_files import arrow_input, arrow_name, parquet_file, parquet_format
from training.logs.column_names import refuse_missing_columns, refuse_repeated_names
from training.logs.explored_rows import PROPENSITY
from training.logs.files import log_files
from training.logs.fingerprint import log_name
from training.logs.formats import log_format
from training.logs.log_time import joined_ts
from training.logs.partitions import partition_columns
from training.logs.plain_columns import plain_columns
from training.logs.row_words import FileRows, JoinedRows
from training.logs.unified_schema import unified_schema

SAMPLE_ROWS = 262_144  # rows read to fix a model's constants (fix_constants) before training
BUFFER_ROWS = 1_048_576  # rows a reader mixes: 16 row groups of 65,536 (docs/scale.md: fewer cost AUC)


@dataclass(frozen=True)
class Span:
    """Rows ``start..stop-1`` of row group ``group`` (an index into ``ShardedLogs.groups``)."""

    group: int
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


class ShardedLogs:
    """A directory or glob of Parquet impression-log shards, read by row group."""

    def __init__(self, path: str | Path, spec: FeatureSpec) -> None:
        files = log_files(path)
        csv = [str(f) for f in files if log_format(f) != "parquet"]
        if csv:
            raise ValueError(f"streaming reads Parquet shards; {csv[:3]} are not (write them as Parquet)")
        self.path = str(path)
        self.files = files
        required = list(LABEL_COLUMNS) + [f.name for f in spec.features if f.required]
        schemas, counts = [], []
        partitions: set[str] = set()  # the partition keys read from the shards' folders (with_partitions)
        for file in files:  # every shard's own columns: the dataset's schema would be the first shard's alone
            try:
                with arrow_input(file) as raw:
                    reader = parquet_file(raw)
                    metadata, schema = reader.metadata, reader.schema_arrow
            except (pa.ArrowInvalid, OSError) as error:  # empty, truncated, not Parquet: say which shard
                raise ValueError(f"impression log {file} cannot be read: {error}") from None
            # as the in-memory reader says it (pyarrow's own words were a KeyError or a "duplicate field names")
            refuse_repeated_names(file, schema.names, "impression log")
            if not metadata.num_rows:  # no row to read: its columns' types do not matter either
                continue
            for key in partition_columns(file, path, schema.names):  # a folder's partition key: a text column
                schema = schema.append(pa.field(key, pa.string()))
                partitions.add(key)
            refuse_missing_columns(file, required, schema.names)
            schemas.append((file, schema))
            counts.append((file, metadata.num_rows))
        if not schemas:
            raise ValueError(f"impression log {path} has no rows")
        names = [arrow_name(f) for f, _ in schemas]  # pyarrow's dataset, which reads the row groups, takes text
        if None in names or arrow_name(path) is None:
            unreadable = next((f for (f, _), name in zip(schemas, names, strict=True) if name is None), Path(path))
            raise ValueError(
                f"impression log {path_text(unreadable)}: the streamed trainer cannot open a file whose name is not "
                "UTF-8: rename the folder, or train in memory (without --nproc)"
            )
        # as the in-memory trainer joins them (an int32 column in one shard, int64 in another, is int64; an
        # optional column some shards lack is null in those): the streamed run refused what trained in memory
        # ts, never trained on, is read as one time where the shards' differ (joined_ts), or left out (said once
        # by rank 0: ts_left_out), where the in-memory trainer and the run refused the log
        joined = joined_ts(schemas, Path(path))
        self.ts_left_out = joined.left_out
        schema = unified_schema([(file, joined.schema(schema)) for file, schema in schemas])
        partitioning = ds.partitioning(pa.schema([(key, pa.string()) for key in sorted(partitions)]), flavor="hive")
        self.dataset = ds.dataset(
            names,
            schema=schema,
            format=parquet_format(),
            **({"partitioning": partitioning, "partition_base_dir": arrow_name(path)} if partitions else {}),
        )
        self.columns = [f.name for f in spec.features if f.name in schema.names] + list(LABEL_COLUMNS)
        # read beside them into the tensors (not checked, not in the statistics): each row's explored flag's source
        self.propensity = [PROPENSITY] if PROPENSITY in schema.names else []
        self.names = schema.names  # every shard's columns (a column some shards lack is null in those)
        # the columns the statistics pass reads beside the features and labels: what Disorder looks at
        self.order_columns = [c for c in ("ts", "request_id") if c in schema.names and c not in self.columns]
        self.groups = []  # a shard without rows has no row group to read
        self.first_row_in_file = []  # each group's first row, counted from its file's first
        for fragment in self.dataset.get_fragments():
            before = 0
            for group in fragment.split_by_row_group():
                if group.row_groups and group.row_groups[0].num_rows:
                    self.groups.append(group)
                    self.first_row_in_file.append(before)
                    before += group.row_groups[0].num_rows
        sizes = np.array([g.row_groups[0].num_rows for g in self.groups], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])  # global row of each group's first row
        self.rows = int(self.offsets[-1])
        if not self.rows:
            raise ValueError(f"impression log {path} has no rows")
        self.file_rows = JoinedRows(tuple(counts), Path(path))  # where a global row lies in its shard, for the warnings

    def identity(self) -> list[tuple[str, int]]:
        """(file name below the log directory, bytes) of every shard, in order: what ``--statistics`` must
        have been fitted on."""
        return [(log_name(file, self.path), file.stat().st_size) for file in self.files]

    def spans(self, start: int, stop: int) -> list[Span]:
        """The row-group spans covering global rows ``start..stop-1``."""
        spans = []
        for group in range(len(self.groups)):
            lo, hi = max(start, int(self.offsets[group])), min(stop, int(self.offsets[group + 1]))
            if lo < hi:
                spans.append(Span(group, lo - int(self.offsets[group]), hi - int(self.offsets[group])))
        return spans

    def split(self, validation_fraction: float) -> tuple[list[Span], list[Span]]:
        """(training spans, held-out spans): the latest ``validation_fraction`` of rows held out."""
        cut = validation_cut(self.rows, validation_fraction)
        return self.spans(0, cut), self.spans(cut, self.rows)

    def read(self, span: Span, columns: Sequence[str] | None = None) -> pa.Table:
        group = self.groups[span.group]  # read with every shard's columns: those this shard lacks are null
        table = group.to_table(schema=self.dataset.schema, columns=list(columns or self.columns), use_threads=False)
        return plain_columns(table.slice(span.start, span.rows))

    def where(self, span: Span) -> tuple[str, FileRows]:
        """(the span's file and row group in it, where the span's rows lie in that file), for messages that
        name a row as the user would find it."""
        group = self.groups[span.group]
        first = self.first_row_in_file[span.group] + span.start
        return f"{group.path} (row group {group.row_groups[0].id})", FileRows(Path(group.path), first)

    def tensors(
        self, spans: Sequence[Span], encoder: FeatureEncoder, position_ctr: dict[int, float]
    ) -> Iterator[ImpressionTensors]:
        """The spans' rows encoded, one span at a time."""
        columns = [*self.columns, *self.propensity]
        for span in spans:
            yield ImpressionTensors.from_table(self.read(span, columns), encoder, position_ctr)

    def sample(
        self, spans: Sequence[Span], encoder: FeatureEncoder, position_ctr: dict[int, float], rows: int = SAMPLE_ROWS
    ) -> ImpressionTensors:
        """About ``rows`` rows from spans spread evenly over ``spans`` (all of them when they hold fewer)."""
        parts = list(self.tensors(sample_spans(spans, rows), encoder, position_ctr))
        return ImpressionTensors({k: torch.cat([p.tensors[k] for p in parts]) for k in parts[0].tensors})


def sample_spans(spans: Sequence[Span], rows: int) -> list[Span]:
    """Spans spread evenly over ``spans`` holding about ``rows`` rows (every span when they hold fewer)."""
    total = sum(s.rows for s in spans)
    if total <= rows:
        return list(spans)
    wanted = max(1, round(len(spans) * rows / total))
    return [spans[i] for i in sorted(set(np.linspace(0, len(spans) - 1, wanted).round().astype(int).tolist()))]


def share(spans: Sequence[Span], part: int, parts: int) -> list[Span]:
    """Part ``part`` of ``parts`` disjoint contiguous pieces of the rows of ``spans`` (in their order),
    each ``total // parts`` rows; the remainder, fewer than ``parts`` rows, goes to none."""
    if not 0 <= part < parts:
        raise ValueError(f"part {part} is not one of {parts} parts")
    each = sum(s.rows for s in spans) // parts
    lo, hi = part * each, (part + 1) * each
    chosen, position = [], 0
    for span in spans:
        start, stop = max(lo, position), min(hi, position + span.rows)
        if start < stop:
            offset = span.start - position
            chosen.append(Span(span.group, start + offset, stop + offset))
        position += span.rows
    return chosen


def epoch_order(spans: Sequence[Span], seed: int, epoch: int) -> list[Span]:
    """``spans`` in a seeded order, different each epoch and the same in every process."""
    order = np.random.default_rng([seed, epoch]).permutation(len(spans))
    return [spans[i] for i in order]


def shuffled_batches(
    chunks: Iterator[ImpressionTensors], batch_size: int, buffer_rows: int, generator: torch.Generator
) -> Iterator[dict[str, torch.Tensor]]:
    """Minibatches of ``batch_size`` rows (the last one smaller) drawn from a shuffle buffer that holds
    ``buffer_rows`` rows before it emits and keeps half of them to mix with the next chunks."""
    pending: list[dict[str, torch.Tensor]] = []
    held = 0

    def mixed() -> dict[str, torch.Tensor]:
        pool = {k: torch.cat([p[k] for p in pending]) for k in pending[0]}
        order = torch.randperm(held, generator=generator)
        return {k: v[order] for k, v in pool.items()}

    for chunk in chunks:
        pending.append(chunk.tensors)
        held += len(chunk)
        emit = (held - buffer_rows // 2) // batch_size * batch_size if held >= buffer_rows else 0
        if emit:
            pool = mixed()
            for start in range(0, emit, batch_size):
                yield {k: v[start : start + batch_size] for k, v in pool.items()}
            pending, held = [{k: v[emit:] for k, v in pool.items()}], held - emit
    if held:
        pool = mixed()
        for start in range(0, held, batch_size):
            yield {k: v[start : start + batch_size] for k, v in pool.items()}


class ImpressionStream(IterableDataset):
    """The training rows of one process (``rank`` of ``world_size``) as shuffled, encoded minibatches;
    DataLoader workers (``batch_size=None``) split the process's rows between them."""

    def __init__(
        self,
        logs: ShardedLogs,
        spans: Sequence[Span],
        encoder: FeatureEncoder,
        position_ctr: dict[int, float],
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        buffer_rows: int = BUFFER_ROWS,
    ) -> None:
        if batch_size < 1 or buffer_rows < 1:
            raise ValueError(f"batch_size and buffer_rows must be >= 1, not {batch_size} and {buffer_rows}")
        self.logs, self.spans, self.encoder, self.position_ctr = logs, list(spans), encoder, position_ctr
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.seed, self.buffer_rows, self.epoch = seed, buffer_rows, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def worker_spans(self, worker: int, workers: int) -> list[Span]:
        """This process's rows for a worker in this epoch."""
        mine = share(epoch_order(self.spans, self.seed, self.epoch), self.rank, self.world_size)
        return share(mine, worker, workers)

    def rows_per_epoch(self, workers: int) -> int:
        """Rows this process trains on per epoch (the same in every process)."""
        readers = max(workers, 1)
        return sum(s.rows for s in self.spans) // self.world_size // readers * readers

    def steps(self, workers: int) -> int:
        """Minibatches per epoch in this process (the same in every process)."""
        readers = max(workers, 1)
        return readers * math.ceil(self.rows_per_epoch(workers) // readers / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        spans = self.worker_spans(worker, workers)
        seed = int(np.random.SeedSequence([self.seed, self.epoch, self.rank, worker]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        chunks = self.logs.tensors(spans, self.encoder, self.position_ctr)
        yield from shuffled_batches(chunks, self.batch_size, self.buffer_rows, generator)
