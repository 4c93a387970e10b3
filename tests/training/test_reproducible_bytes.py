"""The README's "the same bytes": the served esmm, trained and exported by two processes that differ in their
torch thread count (`ctr prepare` trains with one thread, `ctr train` with torch's default) and their hash seed,
gives the same model.onnx bytes and the same model.json but for its date, provenance and logs' path. On one
machine only: another CPU's kernels round otherwise (docs/results.md, "Timings")."""

from __future__ import annotations

import json

from common.repository import MANIFEST_FILE, MODEL_FILE, version_dir
from reports.thread_count_bytes import train_and_export


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
