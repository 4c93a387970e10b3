"""The command line in a locale whose encoding is not UTF-8 (the C locale with Python's UTF-8 mode off: a
cron job's or a minimal container's): what it writes is UTF-8, and it reads logs under a folder whose name
is not ASCII. It wrote a spec in the locale's encoding (or failed to), emptied a page `docs-check --update`
could not encode, and pyarrow, which names files in UTF-8, found no log under ``données/``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common.features import FeatureSpec
from tests.support.checkout import ROOT

ASCII_LOCALE = {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}  # the filesystem encoding: ascii
FOLDER = "données"


def run_ascii(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python ARGUMENTS`` in ``cwd`` under the ASCII locale; its output read as UTF-8."""
    environment = {**os.environ, **ASCII_LOCALE, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *arguments], cwd=cwd, env=environment, capture_output=True, encoding="utf-8", errors="replace"
    )


def test_the_locale_is_ascii(tmp_path: Path) -> None:
    result = run_ascii(["-c", "import sys; print(sys.getfilesystemencoding())"], tmp_path)
    assert result.stdout.strip() == "ascii"


def write_log(path: Path, rows: int = 400) -> None:
    rng = np.random.default_rng(0)
    request = np.arange(rows) // 4
    table = pa.table(
        {
            "request_id": request,
            "ts": request,
            "position": np.arange(rows) % 4 + 1,
            "click": (rng.random(rows) < 0.2).astype("int8"),
            "conversion": np.zeros(rows, dtype="int8"),
            "sité": rng.choice(["café", "日本", "🙂", "plain"], rows),
            "prix": rng.random(rows),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:  # a name that is not UTF-8 too
        pq.write_table(table, file)


def test_a_spec_is_inferred_from_a_folder_named_in_utf8_and_written_as_utf8(tmp_path: Path) -> None:
    write_log(tmp_path / FOLDER / "logs.parquet")
    arguments = ["-m", "cli.main", "spec", "infer", "--logs", f"{FOLDER}/logs.parquet", "--out", "s.toml"]
    result = run_ascii(arguments, tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "s.toml").read_bytes().decode("utf-8")  # UTF-8, as TOML is
    assert f"--logs {FOLDER}/logs.parquet`" in text  # the folder's name as the terminal shows it
    spec = FeatureSpec.from_toml(tmp_path / "s.toml")
    assert [f.name for f in spec.features] == ["sité", "prix"]


def test_new_from_copies_a_utf8_config_as_it_is(tmp_path: Path) -> None:
    config = '# prices in € and a café\nkind = "esmm"\n'
    (tmp_path / "models" / "base").mkdir(parents=True)
    (tmp_path / "models" / "base" / "config.toml").write_text(config, encoding="utf-8")
    result = run_ascii(["-m", "cli.main", "new", "copy", "--from", "base", "--repository", "models"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "models" / "copy" / "config.toml").read_text(encoding="utf-8") == config


def test_docs_check_writes_a_page_back_as_utf8(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    shown = 'Scores – as served:\n\n```sh\ncurl -s localhost:8000/x\n# {"pctr": 0.5}\n```\n'
    page.write_text(shown, encoding="utf-8")
    script = (
        "from pathlib import Path\n"
        "from cli.docs_check import extract, update\n"
        "page = Path('page.md')\n"
        "update(page, [(extract(page)[0], {'pctr': 0.25})])\n"
    )
    result = run_ascii(["-c", script], tmp_path)
    assert result.returncode == 0, result.stderr
    assert page.read_text(encoding="utf-8").startswith("Scores – as served:")
    assert '# {"pctr":0.25}' in page.read_text(encoding="utf-8")


def test_world_shards_are_written_into_a_folder_named_in_utf8(tmp_path: Path) -> None:
    out = f"{FOLDER}/shards"
    arguments = ["-m", "cli.main", "simulate", "--out", out, "--shards", "1", "--rows-per-shard", "200"]
    result = run_ascii(arguments, tmp_path)
    assert result.returncode == 0, result.stderr
    assert pq.read_table(tmp_path / out / "part-00000.parquet").num_rows == 200


STREAMED = (
    "import sys\n"
    "from common.features import Feature, FeatureSpec\n"
    "from training.logs.stream import ShardedLogs\n"
    "print(ShardedLogs(sys.argv[1], FeatureSpec((Feature('prix', 'numeric', 'candidate'),))).rows)\n"
)


def test_the_streamed_reader_reads_a_folder_named_in_utf8(tmp_path: Path) -> None:
    write_log(tmp_path / FOLDER / "day=1" / "logs.parquet")  # a partition key read from a folder's name too
    result = run_ascii(["-c", STREAMED, FOLDER], tmp_path)  # the folder in argv: a script's text is ASCII here
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "400"


def test_the_streamed_reader_names_a_folder_its_dataset_cannot_open(tmp_path: Path) -> None:
    """pyarrow's dataset takes names as text, opened as UTF-8: a name whose bytes are not UTF-8 is said, where
    "surrogates not allowed" named nothing (the in-memory reader opens it)."""
    latin1 = os.fsdecode(b"caf\xe9")
    write_log(tmp_path / latin1 / "logs.parquet")
    result = run_ascii(["-c", STREAMED, latin1], tmp_path)
    assert result.returncode != 0
    # U+FFFD for the byte that is no UTF-8, written as an escape on an ASCII stderr
    assert "impression log caf\\ufffd/logs.parquet: the streamed trainer cannot open a file" in result.stderr
    script = (
        "import sys\nfrom training.logs.reading import read_tables\nprint(read_tables(sys.argv[1], 'log').num_rows)\n"
    )
    result = run_ascii(["-c", script, latin1], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "400"
