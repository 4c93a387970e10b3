"""A CSV's categorical columns are read once (training/csv_codes.py), typed and valued as the reader that read
the file a second time for its integer columns typed them: the same tables, so the same hash buckets."""

from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from common.encoder import FeatureEncoder
from common.features import Feature, FeatureSpec
from training.dataset import ImpressionTensors
from training.logs import read_logs, read_tables

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
}
LABELS = {"position": "1", "click": "0", "conversion": "0"}


def csv_text() -> str:
    names = [*COLUMNS, "count", *LABELS]
    rows = [",".join(names)]
    for i in range(len(COLUMNS["code"])):
        cells = [f'"{values[i]}"' if "," in values[i] else values[i] for values in COLUMNS.values()]
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


@pytest.mark.parametrize("name", ["log.csv", "log.csv.gz"])
def test_a_csv_read_once_is_the_table_it_was_read_twice(tmp_path, name):
    path = tmp_path / name
    data = csv_text().encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    categorical = list(COLUMNS)
    once = read_tables(path, "impression log", categorical=categorical)
    twice = read_twice(path, categorical)
    assert once.schema == twice.schema
    assert once.to_pydict() == twice.to_pydict()
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
