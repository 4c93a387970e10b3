"""A shard folder whose writer stopped part-way (training/logs/shard_folder.py): `ctr simulate --shards 4` stopped by a
full disk at its third shard left the spec and two shards without the manifest, and `ctr train --logs
'DIR/*.parquet'` trained on that half of the log with no warning."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.support.checkout import ROOT
from training.logs.files import log_files
from training.world import World, WorldConfig
from training.world import shards as shard_writer
from training.world.shards import write_shards

SMALL_WORLD = WorldConfig(seed=0, n_users=300, n_ads=100)


def stopped_at_third_shard(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``out`` as a write of four shards leaves it when the disk fills during the third."""
    days = shard_writer.iter_simulated_days

    def disk_full_on_day_2(*args: object, **kwargs: object):
        for day, simulated in enumerate(days(*args, **kwargs)):
            if day == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            yield simulated

    monkeypatch.setattr(shard_writer, "iter_simulated_days", disk_full_on_day_2)
    with pytest.raises(OSError, match="No space left"):
        write_shards(World(SMALL_WORLD), out, 4, 100)
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["_spec.toml", "part-00000.parquet", "part-00001.parquet"]


def test_training_refuses_the_shards_of_a_write_that_did_not_finish(tmp_path, monkeypatch):
    out = tmp_path / "shards"
    stopped_at_third_shard(out, monkeypatch)
    arguments = ["train", "esmm", "--logs", f"{out}/*.parquet", "--spec", str(out / "_spec.toml"),
                 "-r", str(ROOT / "models"), "--work-dir", str(tmp_path / "work"), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, arguments)
    assert isinstance(result.exception, ValueError), result.output  # said as `error: ...` in one line (cli/errors.py)
    assert str(result.exception) == (
        f"{out} is a folder `ctr simulate --shards` did not finish writing (2 shards and no _manifest.json, "
        "which it writes last: a full disk or a kill stopped it, or it is still running): run that "
        f"`ctr simulate --out {out} ...` again to finish it"
    )
    assert not (tmp_path / "work" / "esmm" / "checkpoint.pt").exists()
    with pytest.raises(ValueError, match="did not finish writing"):
        log_files(out)  # the folder itself, as `--logs DIR` names it
    write_shards(World(SMALL_WORLD), out, 4, 100)  # what the line says to do
    assert len(log_files(out)) == 4


def test_a_users_own_logs_beside_a_copy_of_the_worlds_spec_are_read(tmp_path):
    """The world's spec copied into a folder of one's own logs is no unfinished write: they are read."""
    write_shards(World(SMALL_WORLD), tmp_path / "shards", 1, 100)
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(tmp_path / "shards" / "_spec.toml", mine / "_spec.toml")
    shutil.copy(tmp_path / "shards" / "part-00000.parquet", mine / "day-1.parquet")
    assert log_files(f"{mine}/*.parquet") == [mine / "day-1.parquet"]
