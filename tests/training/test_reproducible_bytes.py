"""The README's "the same bytes": the served esmm, trained and exported by two processes that differ in their
torch thread count (`ctr prepare` trains with one thread, `ctr train` with torch's default) and their hash seed,
gives the same model.onnx bytes and the same model.json but for its date, provenance and logs' path. On one
machine only: another CPU's kernels round otherwise (docs/results.md, "Timings")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from common.repository import MANIFEST_FILE, MODEL_FILE, version_dir
from training.model_config import ModelConfig

CHECKOUT = Path(__file__).resolve().parents[2]
# the served config, its model and training as they are, on one small simulated day (2,500 impressions)
SMALLER = {"days = 5": "days = 1", "requests_per_day = 40000": "requests_per_day = 500"}


def tiny_esmm_repository(root: Path) -> Path:
    text = (CHECKOUT / "models" / "esmm" / "config.toml").read_text(encoding="utf-8")
    for served, tiny in SMALLER.items():
        assert served in text, f"models/esmm/config.toml no longer says {served!r}"
        text = text.replace(served, tiny)
    (root / "esmm").mkdir(parents=True)
    (root / "esmm" / "config.toml").write_text(text, encoding="utf-8")
    assert ModelConfig.load(root, "esmm").data.requests_per_day == 500
    return root


def train_and_export(folder: Path, threads: int, hash_seed: int) -> subprocess.Popen:
    root = tiny_esmm_repository(folder / "models")
    command = [sys.executable, "-m", "cli.main", "train", "esmm", "-r", str(root), "--work-dir", str(folder / "work")]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONHASHSEED": str(hash_seed)}
    arguments = [*command, "--export", "--no-progress"]
    return subprocess.Popen(arguments, cwd=CHECKOUT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_one_and_two_threads_and_two_hash_seeds_export_the_same_bytes(tmp_path):
    runs = {threads: train_and_export(tmp_path / f"threads{threads}", threads, threads) for threads in (1, 2)}
    for threads, process in runs.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, f"{threads} thread(s): {output.decode(errors='replace')[-3000:]}"
    one, two = (version_dir(tmp_path / f"threads{threads}" / "models", "esmm", 1) for threads in (1, 2))
    assert (one / MODEL_FILE).read_bytes() == (two / MODEL_FILE).read_bytes()
    manifests = [json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8")) for folder in (one, two)]
    for manifest in manifests:
        del manifest["created"], manifest["provenance"], manifest["training"]["logs"]  # the work dirs differ
    assert manifests[0] == manifests[1]  # the position ratios, metrics and statistics too
    assert manifests[0]["position"]["regime"] == "slot1"
