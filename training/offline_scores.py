"""A file of candidates scored as ``POST /v1/score`` scores them, without a service (``ctr score``).

The rows are read as the trainer reads a log (training/logs/: a Parquet file, a folder of shards or of
Hive partitions, a glob), a record batch at a time, so memory stays bounded whatever the file's size; no
label or position is needed. They are cut into requests: the consecutive rows of one ``request_id`` where
the file has that column, else ``max_candidates`` rows at a time (CTR_MAX_CANDIDATES, and never more: the
service answers a larger request 413). Each request goes through the service's own code: ``checked_request``
(every value checked as /v1/score's features are, service/score/features.py), each role model's ``collate``
and ``run`` as its batcher runs a request alone in its queue, and ``served_probabilities``. A request runs as
the model's batcher would run it with no other request queued: split by ``form_batch`` into runs of the
model's ``[serving] max_batch_size`` rows (one run when CTR_BATCHING is off), as ONNX Runtime's sums round
by batch size: the scores are the service's bit for bit then; batched with others, a row's score may differ
by one float32 step of its logit (docs/encoding.md, "How exact").

A feature column's values are read as the trainer reads a log's (``plain_columns``, then ``column_array``: a
decimal of scale 0 as integers where they fit 64 bits, a ``uuid`` as its text, a view column as a plain one,
booleans as 0/1), so a model scores a file as it was trained on the same file, and go into a request as JSON
carries those values (text, numbers, null); a feature column of a type JSON cannot carry (a list, a struct, a
time, bytes that are not UTF-8 text) is refused naming it. Every column, features too, is written out as the
input holds it.

The result is the input's columns, then ``pctr``, ``pctcvr`` and ``pcvr`` (float64, as served), written
whole (a temporary file renamed over ``out``: a failure leaves nothing half-written), the role models'
names, versions and onnx sha256 in the file's metadata under ``ctr_score``. A row the service would refuse
ends the scoring with a ValueError naming the row (its index in the input) and the problem; so does a row a
model gives a NaN or infinite probability for, which the service answers 500 (the batcher's
``non_finite_output``): written, it was a NaN score in the file, and the command said nothing.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import math
import os
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common.path_text import path_text
from common.repository import versions
from common.roles import NO_MODEL, role_variables
from common.whole_file import written_whole
from service.batching.batcher import non_finite_output
from service.batching.policy import BatchConfig, Slice, Tensors, Work, assemble, form_batch
from service.http.errors import InputError, ModelUnavailable
from service.metrics import run_output_sums
from service.models.base import ModelLoadError
from service.models.loader import load_version
from service.models.manager import load_snapshot, serving_config
from service.models.scoring_model import ScoringModel
from service.models.snapshot import ServingModels, required_outputs
from service.score.pipeline import checked_request, role_models
from service.settings import Settings
from training.logs.arrow_files import arrow_input, arrow_output, parquet_file
from training.logs.arrow_types import is_number, is_text
from training.logs.column_arrays import column_array
from training.logs.files import log_files
from training.logs.formats import log_format
from training.logs.partitions import partition_columns, with_partitions
from training.logs.plain_columns import plain_columns
from training.logs.row_words import FileRows
from training.logs.unified_schema import unified_schema

OUT_SUFFIX = ".parquet"  # what ctr score writes, whatever --out's name says

METADATA_KEY = b"ctr_score"  # the file's metadata entry recording the models and how rows became requests
SCORE_COLUMNS = ("pctr", "pctcvr", "pcvr")
REQUEST_COLUMN = "request_id"
READ_ROWS = 65_536  # rows read at a time; a request that goes on in the next read is carried over to it
_CANDIDATE_FIELD = re.compile(r"^candidates\[(\d+)\]")  # a refusal's field: candidates[3].ad_id
# every row goes in as a candidate, context features too: the service's "candidate feature 'user_id' ..." would
# mislabel a context feature, so a refusal names the feature alone
_CANDIDATE_LABEL = "candidate "
# what a feature column may hold, as a /v1/score body's JSON can carry it
FEATURE_TYPES = (
    "text (string, or binary holding UTF-8), integers, floating-point numbers, decimals or booleans (as 0/1)"
)


@dataclass(frozen=True)
class ScoredFile:
    """What ``score_file`` wrote: how many rows, in how many requests, and by which models."""

    rows: int
    requests: int
    models: dict[str, dict[str, Any]]  # role -> name, version, onnx_sha256


def served_models(settings: Settings, version: int | None = None) -> ServingModels:
    """The role models the service would serve (the settings' CTR_CTR_MODEL and CTR_CTCVR_MODEL, each the
    version its ``[serving] version_policy`` serves: the newest it selects that loads, ``load_snapshot``;
    checked and warmed up by the service's loader), or ``version`` of the one model filling both roles;
    ValueError when a role cannot be filled, saying why."""
    if not settings.roles:
        raise ValueError(f"nothing to score with: {' and '.join(role_variables())} are {NO_MODEL}")
    if version is None:
        try:
            models = load_snapshot(settings)
        except ModelLoadError as error:  # the role models cannot be served together
            raise ValueError(str(error)) from None
    else:
        names = sorted(set(settings.roles.values()))
        if len(names) != 1:
            raise ValueError(f"--version names a version of the one model filling every role; the roles name {names}")
        (name,) = names
        root = settings.model_repository
        exported = versions(root, name)
        if version not in exported:
            raise FileNotFoundError(f"model {name!r} has no version {version} in {root}; exported: {exported}")
        try:
            model = load_version(root, name, version, settings, required_outputs(settings.roles)[name])
        except ModelLoadError as error:
            raise ValueError(f"{name} version {version} is refused as the service refuses it: {error}") from None
        models = ServingModels(settings.roles, {name: model}, {})
    try:
        role_models(models)
    except ModelUnavailable as error:
        raise ValueError(f"the service could not score: {error.message}") from None
    return models


def score_file(candidates: str | Path, out: str | Path, models: ServingModels, settings: Settings) -> ScoredFile:
    """Score every row of ``candidates`` with the role models of ``models`` and write them to ``out`` (either a
    path or its string, as a caller from Python writes it)."""
    candidates, out = Path(candidates), Path(out)
    files = check_paths(candidates, out)
    roles = role_models(models)
    kinds = models.role_feature_kinds
    schema = _input_schema(files, candidates)
    _check_feature_types(schema, kinds, candidates)
    taken = [name for name in SCORE_COLUMNS if name in schema.names]
    if taken:
        raise ValueError(f"{candidates} already has a column {taken[0]!r}, which ctr score writes: rename it")
    required = {feature.name for model in set(roles.values()) for feature in model.required_features}
    missing = sorted(required - set(schema.names))
    if missing:
        raise ValueError(f"{candidates} has no column for the features {missing}, which the served models require")
    record = {
        role: {"name": model.name, "version": model.version, "onnx_sha256": model.manifest.onnx_sha256}
        for role, model in roles.items()
    }
    grouped_by = REQUEST_COLUMN if REQUEST_COLUMN in schema.names else None
    metadata = {"models": record, "request_column": grouped_by, "max_request_rows": settings.max_candidates}
    scores = pa.schema([pa.field(name, pa.float64()) for name in SCORE_COLUMNS])
    written = pa.unify_schemas([schema, scores]).with_metadata({METADATA_KEY: json.dumps(metadata).encode()})
    runs = {model: _batch_config(settings, model) for model in roles.values()}
    scorer = _Scorer(roles, kinds, settings, [name for name in schema.names if name in kinds], runs)
    rows = 0
    with written_whole(out) as temporary, arrow_output(temporary) as sink, pq.ParquetWriter(sink, written) as writer:
        for file in files:
            in_file = 0  # a refusal names the row in its file (a folder's second file's rows were numbered on)
            for request_rows in _request_chunks(file, candidates, schema, grouped_by, settings.max_candidates):
                table, bounds = request_rows
                writer.write_table(scorer.scored(table, bounds, FileRows(file, in_file)).cast(written))
                in_file += table.num_rows
            rows += in_file
    return ScoredFile(rows, scorer.requests, record)


@dataclass
class _Scorer:
    roles: dict[str, ScoringModel]
    kinds: dict[str, str]  # feature -> kind, the role models' merged (ServingModels.role_feature_kinds)
    settings: Settings
    features: list[str]  # the input's columns that are features of the served models, in input order
    batching: dict[ScoringModel, BatchConfig]  # each model's batcher settings: how a request is split into runs
    requests: int = 0

    def scored(self, table: pa.Table, bounds: list[tuple[int, int]], rows: FileRows) -> pa.Table:
        """``table`` with the score columns, each request ``start:stop`` of ``bounds`` scored alone; ``rows``
        says where its rows lie in their input file."""
        plain = plain_columns(table.select(self.features))  # as the streamed trainer reads a row group
        values = {name: _request_values(plain, name, rows) for name in self.features}
        scores: tuple[list[float], list[float], list[float]] = ([], [], [])
        for start, stop in bounds:
            columns = [values[name][start:stop] for name in self.features]
            candidates = [dict(zip(self.features, row, strict=True)) for row in zip(*columns, strict=True)]
            try:
                request = checked_request({}, candidates, self.roles, self.kinds, self.settings.max_string_chars)
            except InputError as error:
                found = _CANDIDATE_FIELD.match(error.field or "")
                row = start + (int(found.group(1)) if found else 0)
                said = error.message.removeprefix(_CANDIDATE_LABEL)
                raise ValueError(f"{_input_row(rows, row)}: {said}") from None
            outputs = {
                model: _run_alone(model, inputs, request.n_candidates, self.batching[model])
                for model, inputs in request.inputs.items()
            }
            for model, ran in outputs.items():
                _check_finite(model, ran, rows, start)
            for served, more in zip(scores, request.served(outputs), strict=True):
                served.extend(more)
            self.requests += 1
        for name, served in zip(SCORE_COLUMNS, scores, strict=True):
            table = table.append_column(pa.field(name, pa.float64()), pa.array(served, pa.float64()))
        return table


def _run_alone(model: ScoringModel, inputs: Any, n_rows: int, batching: BatchConfig) -> Tensors:
    """A request's outputs from ``model`` as its batcher gives them with no other request queued: cut by
    ``form_batch`` into runs of ``max_batch_size`` rows, each ``collate``d and run, the parts assembled in row
    order (service/batching/batcher.py); unbatched (CTR_BATCHING off), one run of the whole request."""
    work = Work(inputs, n_rows, deadline=math.inf, enqueued=0.0)
    if not batching.enabled:
        return model.run(model.collate([Slice(work, 0, n_rows)]))
    pending = deque([work])
    while pending:
        batch, _ = form_batch(pending, batching.max_batch_size, now=0.0)
        work.parts.append((batch[0].start, model.run(model.collate(batch))))  # one work: one slice a batch
    return assemble(work)


def _check_finite(model: ScoringModel, outputs: Tensors, rows: FileRows, start: int) -> None:
    """ValueError naming the first row (in its file: ``rows``; the request's first is ``start``) that
    ``model`` gave a NaN or infinite probability, which the service answers 500: the batcher's check
    (``non_finite_output``, one compare a request when every score is finite), then the row found."""
    sums = run_output_sums(outputs)
    if non_finite_output(sums) is None:
        return
    row, output = min(  # the earliest row; on a tie, the output the service's 500 names (its first not finite)
        (
            (int(np.flatnonzero(~np.isfinite(outputs[name]))[0]), name)
            for name, total in sums.items()
            if not math.isfinite(total)
        ),
        key=lambda found: found[0],
    )
    raise ValueError(
        f"{_input_row(rows, start + row)}: model {model.name}:{model.version} returned a "
        f"non-finite score ({output} NaN or infinite) for it, which /v1/score answers 500 (a NaN or an infinity "
        "in the model's weights gives one): score with a version that has none"
    )


def _batch_config(settings: Settings, model: ScoringModel) -> BatchConfig:
    """The model's batcher settings, read as the service reads them (``serving_config``)."""
    try:
        return serving_config(settings, model.name).batch
    except ModelLoadError as error:
        raise ValueError(f"model {model.name!r}: {error}") from None


def check_paths(candidates: Path, out: Path) -> list[Path]:
    """The Parquet files ``candidates`` stands for (``_parquet_files``), once ``out`` is a place for their scores;
    FileNotFoundError or ValueError where there are none, or where ``out`` is not a ``.parquet`` name (Parquet is
    written whatever the name), the candidates file itself (replaced by its scores), or a file among those
    ``candidates`` stands for (a folder's, a glob's: a second run read the first one's scores as a shard). Said
    before the models load."""
    files = _parquet_files(candidates)
    if out.suffix.lower() != OUT_SUFFIX:
        raise ValueError(f"--out {out}: ctr score writes Parquet: name a {OUT_SUFFIX} file")
    written = out.resolve()
    if candidates.is_file() and written == candidates.resolve():
        raise ValueError(f"--out {out} is the candidates file: name another file for the scores")
    if candidates.is_dir() and written.is_relative_to(candidates.resolve()):
        raise ValueError(f"--out {out} lies in the candidates folder {candidates}: write the scores outside it")
    if _glob_reads(candidates, written):
        raise ValueError(f"--out {out} matches the candidates pattern {candidates}: write the scores elsewhere")
    return files


def _glob_reads(pattern: Path, path: Path) -> bool:
    """Whether the glob ``pattern`` (not a path that exists) would read ``path`` (resolved), were it there."""
    if pattern.exists() or not glob.has_magic(str(pattern)):
        return False
    absolute = Path(os.path.abspath(pattern))
    # a pattern's parts one by one: fnmatch's * would match across folders, a glob's does not
    return len(absolute.parts) == len(path.parts) and all(
        fnmatch.fnmatchcase(part, wanted) for part, wanted in zip(path.parts, absolute.parts, strict=True)
    )


def _check_feature_types(schema: pa.Schema, kinds: dict[str, str], candidates: Path) -> None:
    """ValueError naming the first feature column whose type, read as the trainer reads it (``plain_columns``: a
    ``uuid`` as text), a /v1/score body's JSON cannot carry."""
    for field in plain_columns(schema.empty_table()).schema:
        if field.name in kinds and not _json_carries(field.type):
            raise ValueError(
                f"{candidates}: column {field.name!r}, a feature of the served models, is of type {field.type}, "
                f"which a /v1/score request cannot carry: ctr score takes {FEATURE_TYPES} (or nulls)"
            )


def _json_carries(kind: pa.DataType) -> bool:
    """Whether a column of Arrow type ``kind`` reads as values a request's JSON carries (``_request_values``)."""
    return (
        is_text(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or is_number(kind)
        or pa.types.is_boolean(kind)  # 0 and 1, as the trainer reads them (the service refuses JSON's true)
        or pa.types.is_null(kind)
    )


def _parquet_files(candidates: Path) -> list[Path]:
    try:
        files = log_files(candidates, "candidates file")
    except FileNotFoundError:
        if candidates.is_dir():  # the logs' readers' words named CSV, which ctr score does not read
            raise FileNotFoundError(f"{candidates} holds no .parquet files (ctr score reads Parquet)") from None
        raise
    other = [file for file in files if log_format(file) != "parquet"]
    if other:
        raise ValueError(f"ctr score reads Parquet; {other[0]} is not (write the candidates as .parquet)")
    return files


def _input_schema(files: list[Path], candidates: Path) -> pa.Schema:
    """The files' columns unified as the trainer unifies a log's (``unified_schema``), with each file's Hive
    partition keys as text columns (``with_partitions``)."""
    schemas = []
    for file in files:
        with arrow_input(file) as raw:
            schema = parquet_file(raw).schema_arrow
        for key in partition_columns(file, candidates, schema.names):
            schema = schema.append(pa.field(key, pa.string()))
        schemas.append((file, schema.remove_metadata()))
    return unified_schema(schemas, "candidates file")


def _request_chunks(
    file: Path, candidates: Path, schema: pa.Schema, grouped_by: str | None, max_rows: int
) -> Iterator[tuple[pa.Table, list[tuple[int, int]]]]:
    """(rows of ``file`` in ``schema``, the requests among them as (start, stop)), read ``READ_ROWS`` at a
    time; the last request of a read is carried over to the next (it may go on there), never past the file."""
    with arrow_input(file) as raw:
        reader = parquet_file(raw)  # Spark's INT96 timestamps read as the trainer reads them
        partitions = partition_columns(file, candidates, reader.schema_arrow.names)
        carried: pa.Table | None = None
        for batch in reader.iter_batches(READ_ROWS):
            table = _conformed(with_partitions(pa.Table.from_batches([batch]), partitions), schema)
            if carried is not None:
                table = pa.concat_tables([carried, table])
            bounds = _request_bounds(table, grouped_by, max_rows)
            last_start = bounds[-1][0]
            if last_start:
                yield table.slice(0, last_start), bounds[:-1]
            carried = table.slice(last_start)
        if carried is not None and carried.num_rows:
            yield carried, _request_bounds(carried, grouped_by, max_rows)


def _request_bounds(table: pa.Table, grouped_by: str | None, max_rows: int) -> list[tuple[int, int]]:
    """Each request's (start, stop) among ``table``'s rows: a run of one ``grouped_by`` value, cut every
    ``max_rows`` rows (the service's CTR_MAX_CANDIDATES)."""
    n = table.num_rows
    if grouped_by is None:
        starts = [0]
    else:
        ids = table.column(grouped_by).to_pylist()
        starts = [0, *(i for i in range(1, n) if ids[i] != ids[i - 1])]
    bounds = []
    for start, stop in zip(starts, [*starts[1:], n], strict=True):
        bounds += [(s, min(s + max_rows, stop)) for s in range(start, stop, max_rows)]
    return bounds


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``'s columns and types (a column its file lacks is null there)."""
    columns = [
        table.column(field.name).cast(field.type)
        if field.name in table.column_names
        else pa.nulls(len(table), field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _input_row(rows: FileRows, row: int) -> str:
    """The table's row ``row`` as a refusal names it: "row 3 of the input (cands/day=2/part-0.parquet)", counted
    from 0 in that file, named by its path as the folder or glob given leads to it (its name alone was two
    files' in a partitioned folder: ``day=1/part-0.parquet`` and ``day=2/part-0.parquet``)."""
    assert rows.file is not None  # an input's rows always come from a file
    return f"{rows.named(row)} of the input ({rows.file})"


def _request_values(table: pa.Table, name: str, rows: FileRows) -> list[Any]:
    """A feature column of a ``plain_columns`` table as a request's JSON would carry its values (``rows``: where
    they lie in their input file): bytes as their UTF-8 text (ValueError naming the row, column
    and file where they are not), the rest read as the trainer reads a log's (``column_array``: booleans as
    0/1, decimals as numbers); a null, and NaN (how pandas writes a gap), as null."""
    column = table.column(name)
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        return [_text(value, rows, i, name) for i, value in enumerate(column.to_pylist())]
    values = column_array(table, name)
    if values.dtype.kind == "f":
        return [None if value != value else value for value in values.tolist()]
    return values.tolist()


def _text(value: bytes | None, rows: FileRows, row: int, name: str) -> str | None:
    """A binary feature value as the text a request would send, if it is UTF-8."""
    try:
        return None if value is None else value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{_input_row(rows, row)}: column {name!r} holds bytes that are not UTF-8 text "
            f"({error.reason} at byte {error.start}); ctr score reads a binary feature as text"
        ) from None


def scored_metadata(path: Path) -> dict[str, Any]:
    """What ``score_file`` recorded in a scored file's metadata (the models, how rows became requests)."""
    with arrow_input(path) as raw:
        metadata = pq.read_schema(raw).metadata or {}
    if METADATA_KEY not in metadata:
        raise ValueError(f"{path_text(path)} was not written by ctr score (no {METADATA_KEY.decode()} metadata)")
    return json.loads(metadata[METADATA_KEY])
