"""`ctr train --logs` and `ctr evaluate --logs` on a folder or glob of files: a refusal names the file and the
row in it, counted from 0 within that file (never across the folder's files, never from a Parquet row group's
start), and a CSV's line as an editor shows it (a quoted line break and a blank line above make "row + 2"
wrong). Each test reads the named row back from the file (``tests.support.named_rows``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
from typer.testing import CliRunner

from cli.main import app
from tests.support.named_rows import csv_line, parquet_row
from tests.support.own_logs import CONFIG_TOML, SPEC_TOML, write_logs
from tests.support.tiny_model import publish_tiny_esmm

BAD_ROW = 6  # in the second row group of 4 rows


def parquet_folder(folder: Path, table: pa.Table) -> Path:
    """``table`` as a.parquet and, after it, b.parquet with click 2 at ``BAD_ROW`` in its second row group."""
    folder.mkdir()
    pq.write_table(table, folder / "a.parquet")
    click = table.column("click").to_pylist()
    click[BAD_ROW] = 2
    bad = table.set_column(table.column_names.index("click"), "click", pa.array(click, table.column("click").type))
    pq.write_table(bad, folder / "b.parquet", row_group_size=4)
    assert pq.ParquetFile(folder / "b.parquet").metadata.num_row_groups > 2
    return folder / "b.parquet"


def refusal(*arguments: str) -> str:
    """The message of the ValueError that ends ``ctr ARGUMENTS``."""
    result = CliRunner().invoke(app, list(arguments))
    assert result.exit_code != 0 and isinstance(result.exception, ValueError), result.output + repr(result.exception)
    return str(result.exception)


def train_refusal(tmp_path: Path, logs: Path | str) -> str:
    (tmp_path / "models" / "esmm").mkdir(parents=True)
    (tmp_path / "models" / "esmm" / "config.toml").write_text(CONFIG_TOML, encoding="utf-8")
    (tmp_path / "spec.toml").write_text(SPEC_TOML, encoding="utf-8")
    return refusal(
        "train", "esmm", "--logs", str(logs), "--spec", str(tmp_path / "spec.toml"), "--no-progress",
        "--repository", str(tmp_path / "models"), "--work-dir", str(tmp_path / "work"),
    )  # fmt: skip


def test_train_names_the_parquet_file_and_its_own_row(tmp_path: Path) -> None:
    write_logs(tmp_path / "logs.csv", rows=12)
    bad = parquet_folder(tmp_path / "logs", pv.read_csv(tmp_path / "logs.csv"))
    message = train_refusal(tmp_path, tmp_path / "logs")
    assert f"{bad}: click must be 0 or 1" in message
    assert parquet_row(message, bad)["click"] == 2


def test_train_names_the_csv_line_past_a_quoted_line_break_and_a_blank_line(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    write_logs(tmp_path / "logs" / "a.csv", rows=12)
    header, *rows = (tmp_path / "logs" / "a.csv").read_text(encoding="utf-8").splitlines()
    assert ",s1," in rows[1]
    rows[1] = rows[1].replace(",s1,", ',"s\n1",')  # a site holding a line break: one row on two lines
    rows[BAD_ROW] = ",".join([*rows[BAD_ROW].split(",")[:-2], "2", "0"])  # click 2
    bad = tmp_path / "logs" / "b.csv"
    bad.write_text("\n".join([header, *rows[:3], "", *rows[3:]]) + "\n", encoding="utf-8")
    message = train_refusal(tmp_path, tmp_path / "logs" / "*.csv")
    assert f"{bad}: click must be 0 or 1" in message and f"row {BAD_ROW} (line {BAD_ROW + 4} of the CSV)" in message
    assert csv_line(message, bad) == rows[BAD_ROW]


def test_evaluate_names_the_parquet_file_and_its_own_row(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path / "models")
    rng = np.random.default_rng(0)
    n = 12
    columns = {"user_id": rng.integers(0, 50, n), "ad_id": rng.integers(0, 100, n), "ad_price": rng.random(n)}
    labels = {"position": np.full(n, 1), "click": np.arange(n) % 2, "conversion": np.zeros(n, dtype=np.int64)}
    bad = parquet_folder(tmp_path / "logs", pa.table(columns | labels))
    message = refusal(
        "evaluate", "esmm", "--logs", str(tmp_path / "logs"), "--out", str(tmp_path / "eval.json"),
        "-r", str(tmp_path / "models"),
    )  # fmt: skip
    assert f"{bad}: click must be 0 or 1" in message
    assert parquet_row(message, bad)["click"] == 2
