"""`reports/sample_std_from_population.py`: the committed reports' population std made the sample one, once."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from reports.sample_std_from_population import main
from training.experiments.summary import STD_KIND

RUNS = [[0.1, 0.2, 0.6], [0.5, 0.5, 0.8]]  # per seed: two metrics of one variant and group


def _esam_report() -> dict:
    per_seed = [{"ESAM": {"hot": {"recall@10": a, "recall@50": b}}} for a, b in zip(*RUNS, strict=True)]
    variants = {
        "ESAM": {
            "hot": {
                m: {"mean": float(np.mean(v)), "std": float(np.std(v))}
                for m, v in zip(("recall@10", "recall@50"), RUNS, strict=True)
            }
        }
    }
    return {"config": {"seeds": 3}, "per_seed": per_seed, "variants": variants}


def _moore_report(loop_seeds: int, initialisations: int) -> dict:
    row = {"lambda": 0.0, "rus_auc": {"mean": 0.5, "std": 0.09}, "untrained_rus_auc": {"mean": 0.47, "std": 0.08}}
    rows = {
        v: [{**json.loads(json.dumps(row)), "rus_auc_by_loop": [0.5] * loop_seeds}] for v in ("bypass", "no_bypass")
    }
    return {
        "config": {"loop_seeds": loop_seeds, "initialisations": initialisations},
        "loops": [{"seed": s} for s in range(loop_seeds)],
        "untrained": {v: dict(row["untrained_rus_auc"]) for v in rows},
        **rows,
    }


def test_esam_std_becomes_the_sample_std_of_its_seeds_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "esam.json"
    path.write_text(json.dumps(_esam_report(), indent=2, sort_keys=True) + "\n")
    assert main([str(path)]) == 0
    converted = path.read_text()
    report = json.loads(converted)
    assert report["std_kind"] == STD_KIND and list(report) == sorted(report)  # the keys stay sorted
    hot = report["variants"]["ESAM"]["hot"]
    assert hot["recall@10"]["std"] == pytest.approx(np.std(RUNS[0], ddof=1))
    assert hot["recall@50"]["std"] == pytest.approx(np.std(RUNS[1], ddof=1))
    assert main([str(path)]) == 0
    assert path.read_text() == converted


def test_moore2018_std_is_over_loops_times_initialisations_and_null_for_one_run(tmp_path: Path) -> None:
    path = tmp_path / "moore2018.json"
    path.write_text(json.dumps(_moore_report(loop_seeds=5, initialisations=2), indent=2) + "\n")
    main([str(path)])
    report = json.loads(path.read_text())
    assert list(report)[:2] == ["config", "std_kind"]
    factor = math.sqrt(10 / 9)
    assert report["bypass"][0]["rus_auc"]["std"] == pytest.approx(0.09 * factor)
    # untrained repeats the first row's untrained_rus_auc: converted once, still equal to it
    assert report["untrained"]["bypass"] == report["bypass"][0]["untrained_rus_auc"]
    assert report["untrained"]["bypass"]["std"] == pytest.approx(0.08 * factor)
    single = tmp_path / "single.json"
    single.write_text(json.dumps(_moore_report(loop_seeds=1, initialisations=1), indent=2) + "\n")
    main([str(single)])
    assert json.loads(single.read_text())["no_bypass"][0]["rus_auc"]["std"] is None


def test_a_std_that_is_not_the_population_std_of_the_runs_is_refused(tmp_path: Path) -> None:
    report = _esam_report()
    report["variants"]["ESAM"]["hot"]["recall@10"]["std"] = float(np.std(RUNS[0], ddof=1))  # sample already
    path = tmp_path / "esam.json"
    path.write_text(json.dumps(report))
    with pytest.raises(AssertionError, match="population std"):
        main([str(path)])
    assert json.loads(path.read_text()) == report  # nothing written
