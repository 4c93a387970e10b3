"""A CSV's categorical columns are read once (training/logs/csv_codes.py), typed and valued as the reader that read
the file a second time for its integer columns typed them: the same tables, so the same hash buckets. Columns
of floats, booleans, dates, times and timestamps were read a third time, with pyarrow's inference: they are
typed from their cells, by that inference, alike."""

from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from common.encoder import FeatureEncoder
from common.features import Feature, FeatureSpec
from training.fitting.dataset import ImpressionTensors
from training.logs.reading import read_logs, read_tables

# One categorical column per way pyarrow may type a CSV column, each cell of a row in the same position.
COLUMNS = {
    "code": ["007", "7", "-3", " 12 ", "NA", "", "0x1F", "9223372036854775807", "-0"],
    "text": ["a", "NA", "", "007", "mobile", "a,b", "é", "null", "7"],
    "whole": ["1.0", "2.0", "", "3.0", "NA", "4", "5.0", "6", "7.0"],
    "flag": ["true", "false", "", "TRUE", "False", "true", "true", "false", "true"],
    "day": ["2024-03-09", "2024-03-10", "", "2024-03-11", "NA", "2024-03-12", "2024-03-13", "2024-03-14", ""],
    "gaps": ["", "NA", "", "null", "", "", "N/A", "", ""],
    "past_int64": ["9223372036854775808", "1", "2", "3", "4", "5", "6", "7", "8"],
    "signed": ["+4", "5", "6", "7", "8", "9", "10", "11", "12"],
    "words": ["1", "1.5", "x", "true", "2024-03-09", "inf", "", "NA", "7"],
    "real": ["1.5", "-2e3", " 3.25 ", "inf", "NA", "", "-Infinity", "Nan", "+0.5"],
    "bits": ["1", "0", "true", "False", "", "True", "0", "1", "false"],
    "naive": ["2024-03-09 12:00:00", "2024-03-09T12:00", "", "2024-03-10", "NA", "2024-03-10T01:00:00"] + [""] * 3,
    "zoned": ["2024-03-09T12:00:00Z", "2024-03-09 12:00:00+05:30", "", "2024-03-10T01:00:00-0800"] + ["NA"] * 5,
    "nanos": ["2024-03-09T12:00:00.123456789", "2024-03-09T12:00:00.5", "", "2024-03-09T12:00:00"] + [""] * 5,
    "clock": ["12:00:00", "13:01", "", "23:59:59", "NA", "00:00:00", "12:00:00", "01:02:03", "12:00:00"],
    "zone_or_none": ["2024-03-09T12:00:00Z", "2024-03-09T12:00:00", "", "NA", "2024-03-10"] + [""] * 4,
    "nan_words": ["1.5", 'nan "quoted"', "nan,comma", "3", "4", "5", "6", "7", "8"],  # words no float is
}
# what pyarrow infers each column of floats, booleans, times or mixed cells as (the reader before read them again)
INFERRED = {
    "real": pa.float64(),
    "bits": pa.bool_(),
    "naive": pa.timestamp("s"),
    "zoned": pa.timestamp("s", tz="UTC"),
    "nanos": pa.timestamp("ns"),
    "clock": pa.time32("s"),
    "zone_or_none": pa.string(),
    "nan_words": pa.string(),
    "words": pa.string(),
    "whole": pa.float64(),
    "flag": pa.bool_(),
    "day": pa.date32(),
}
LABELS = {"position": "1", "click": "0", "conversion": "0"}


def csv_text() -> str:
    names = [*COLUMNS, "count", *LABELS]
    rows = [",".join(names)]
    for i in range(len(COLUMNS["code"])):
        cells = [
            '"' + values[i].replace('"', '""') + '"' if any(mark in values[i] for mark in ',"') else values[i]
            for values in COLUMNS.values()
        ]
        rows.append(",".join([*cells, str(i), *LABELS.values()]))
    return "\n".join(rows) + "\n"


def read_twice(path, categorical: list[str]) -> pa.Table:
    """The reader before: every column as pyarrow infers it, then the categorical columns it read as integers
    again, as text, their null cells kept null."""
    parse = pacsv.ParseOptions(newlines_in_values=True)
    table = pacsv.read_csv(path, parse_options=parse)
    codes = [name for name in categorical if pa.types.is_integer(table.column(name).type)]
    text = pacsv.read_csv(
        path,
        parse_options=parse,
        convert_options=pacsv.ConvertOptions(include_columns=codes, column_types=dict.fromkeys(codes, pa.string())),
    )
    for name in codes:
        kept = pc.if_else(pc.is_null(table.column(name)), None, text.column(name))
        table = table.set_column(table.column_names.index(name), name, kept)
    return table


def as_text(table: pa.Table) -> dict[str, list[str | None]]:
    """Each column's values as Arrow writes them as text: NaN is "nan" (a NaN differs from itself), and a
    timestamp of nanoseconds needs no pandas to be read back."""
    return {name: table.column(name).cast(pa.string()).to_pylist() for name in table.column_names}


@pytest.mark.parametrize("name", ["log.csv", "log.csv.gz"])
def test_a_csv_read_once_is_the_table_it_was_read_twice(tmp_path, name):
    path = tmp_path / name
    data = csv_text().encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    categorical = list(COLUMNS)
    once = read_tables(path, "impression log", categorical=categorical)
    twice = read_twice(path, categorical)
    assert once.schema == twice.schema
    assert as_text(once) == as_text(twice)
    assert {name: once.schema.field(name).type for name in INFERRED} == INFERRED  # each case is the one it names
    assert once.column("code").to_pylist()[:6] == ["007", "7", "-3", " 12 ", None, None]  # the text, gaps null
    assert once.column("text").to_pylist()[:3] == ["a", "NA", ""]  # a text column's "NA" and "" are text


def test_the_buckets_of_codes_text_and_whole_floats_are_those_of_the_old_reading(tmp_path):
    path = tmp_path / "log.csv.gz"
    path.write_bytes(gzip.compress(csv_text().encode()))
    spec = FeatureSpec(
        tuple(
            Feature(name, "categorical", "candidate", required=False, buckets=101) for name in ("code", "text", "whole")
        )
    )
    encoder = FeatureEncoder(spec)
    once = ImpressionTensors.from_table(read_logs(path, spec), encoder).tensors
    twice = ImpressionTensors.from_table(read_twice(path, ["code", "text", "whole"]), encoder).tensors
    np.testing.assert_array_equal(once["categorical"].numpy(), twice["categorical"].numpy())
    as_requests = encoder.encode({"code": ["007", "7"], "text": ["a", "NA"], "whole": [1, 2]}, 2)
    np.testing.assert_array_equal(once["categorical"].numpy()[:2], as_requests.categorical)
