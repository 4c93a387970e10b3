"""Rewriting a shard folder leaves exactly the new shards, and a folder holding a user's files is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.checkout import ROOT
from training.logs.files import log_files
from training.world import World, WorldConfig
from training.world.shards import write_shards

SMALL_WORLD = WorldConfig(seed=0, n_users=300, n_ads=100)


def test_fewer_shards_over_more_leave_only_the_new_ones(tmp_path):
    out = tmp_path / "shards"
    write_shards(World(SMALL_WORLD), out, 3, 100)
    manifest = write_shards(World(SMALL_WORLD), out, 1, 100)
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", "_spec.toml", "part-00000.parquet"]
    # what training reads from the folder is what the manifest says: 100 rows, not the 300 of three shards
    assert [p.name for p in log_files(out)] == [s["file"] for s in manifest["shards"]] == ["part-00000.parquet"]


def test_a_killed_writes_temporary_files_are_the_writers_own(tmp_path):
    out = tmp_path / "shards"
    write_shards(World(SMALL_WORLD), out, 2, 100)
    (out / ".part-00001.parquet.4242.tmp").write_bytes(b"half a shard")
    write_shards(World(SMALL_WORLD), out, 1, 100)
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", "_spec.toml", "part-00000.parquet"]


@pytest.mark.parametrize("foreign", ["sub/a.parquet", "notes.txt", "part-1.parquet"])
def test_a_folder_with_files_the_writer_did_not_write_is_refused_untouched(tmp_path, foreign):
    out = tmp_path / "shards"
    write_shards(World(SMALL_WORLD), out, 2, 100)
    (out / foreign).parent.mkdir(parents=True, exist_ok=True)
    (out / foreign).write_text("a user's")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    shown = foreign.split("/")[0] + ("/" if "/" in foreign else "")
    with pytest.raises(ValueError, match=rf"{out} holds files the shard writer did not write \({shown}\)"):
        write_shards(World(SMALL_WORLD), out, 1, 100)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # nothing removed, the manifest kept
    assert json.loads((out / "_manifest.json").read_text())["rows"] == 200


def test_cli_refuses_a_foreign_folder_in_one_line(tmp_path):
    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "sub" / "a.parquet").write_text("a user's")
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "simulate", "--out", "out", "--shards", "1", "--rows-per-shard", "100"],
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: out holds files the shard writer did not write (sub/): " \
        "write shards into an empty or new folder, or one that holds only shards"  # fmt: skip


def test_files_named_as_shards_in_a_folder_it_did_not_write_are_left_alone(tmp_path):
    """Five part-NNNNN.parquet files of another tool, without this writer's spec or manifest: a write of one
    shard deleted four of them (a user's data)."""
    out = tmp_path / "exported"
    out.mkdir()
    for day in range(5):
        (out / f"part-{day:05d}.parquet").write_bytes(b"someone else's data")
    with pytest.raises(ValueError, match="holds files named as shards"):
        write_shards(World(SMALL_WORLD), out, 1, 100)
    assert sorted(p.name for p in out.iterdir()) == [f"part-{day:05d}.parquet" for day in range(5)]


@pytest.mark.parametrize("marker", ["_spec.toml", "_manifest.json"])
def test_a_spec_or_manifest_of_the_users_own_is_no_mark(tmp_path, marker):
    """A user's folder with a _spec.toml (or _manifest.json) of their own beside part-NNNNN files: a write of
    one shard overwrote their spec and deleted four of their files."""
    out = tmp_path / "exported"
    out.mkdir()
    (out / marker).write_text('{"format": "theirs"}' if marker.endswith(".json") else "# my own spec\n")
    for day in range(5):
        (out / f"part-{day:05d}.parquet").write_bytes(b"someone else's data")
    with pytest.raises(ValueError, match=r"holds files named as shards .* but no _spec\.toml or _manifest\.json of"):
        write_shards(World(SMALL_WORLD), out, 1, 100)
    assert (out / "part-00004.parquet").read_bytes() == b"someone else's data"
    assert "theirs" in (out / marker).read_text() or "my own" in (out / marker).read_text()


def test_a_killed_first_write_is_written_over(tmp_path):
    """A write killed after its spec (written first) left shards without a manifest: its own, written over."""
    out = tmp_path / "shards"
    write_shards(World(SMALL_WORLD), out, 3, 100)
    (out / "_manifest.json").unlink()
    write_shards(World(SMALL_WORLD), out, 1, 100)
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", "_spec.toml", "part-00000.parquet"]
