"""`ctr experiment cvr-diagnosis`: the served esmm's variants, scored per true-CTR decile against the truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.support.checkout import ROOT
from training.experiments.cvr_diagnosis import resolution_bound
from training.experiments.settings.cvr_diagnosis import DiagnosisConfig


@pytest.fixture
def tiny_repository(tmp_path):
    """models/esmm's config with tiny towers (the logs' size comes from the command line)."""
    config = (ROOT / "models" / "esmm" / "config.toml").read_text()
    config = config.replace("embedding_dim = 18", "embedding_dim = 4").replace(
        "hidden = [360, 200, 80]", "hidden = [8]"
    )
    (tmp_path / "models" / "esmm").mkdir(parents=True)
    (tmp_path / "models" / "esmm" / "config.toml").write_text(config)
    return tmp_path / "models"


def test_quick_run_writes_every_variant_and_the_bounds(tmp_path, tiny_repository):
    out = tmp_path / "diagnosis.json"
    variants = ["untrained", "served", "cvr offset 0", "oracle labels"]
    args = ["experiment", "cvr-diagnosis", "--days", "1", "--requests-per-day", "400", "--heldout-requests", "400"]
    args += [item for label in variants for item in ("--variant", label)]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--repository", str(tiny_repository)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads(out.read_text())
    assert set(report["variants"]) == set(variants)
    for (run,) in report["variants"].values():
        assert len(run["by_true_ctr_decile"]) == 10
        assert len(run["cvr_logit_gradient"]["mean_abs_by_true_ctr_decile"]) == 10
        assert 0.0 <= run["cvr_auc_entire_space"] <= 1.0
    (untrained,) = report["variants"]["untrained"]
    assert all(d["cvr_logit_moved"] < 1e-6 for d in untrained["by_true_ctr_decile"])  # nothing learned
    (offset0,) = report["variants"]["cvr offset 0"]
    assert offset0["pcvr_over_true"] > untrained["pcvr_over_true"]  # starts at p ~ 0.5, not the clicks' CVR
    bounds = report["resolution_bound"]
    assert bounds["none"] > 1.0  # clicks select conversions: the click-weighted CVR exceeds the mean
    assert bounds["user_id x ad_id"] == pytest.approx(1.0, abs=0.02)  # full resolution: no selection left
    assert 1.0 < bounds["everything but the user's own latent"] < bounds["none"]  # the user's offset selects
    assert "| oracle labels |" in result.output


def test_resolution_bound_is_the_click_weighted_cvr_over_the_mean():
    import pyarrow as pa

    table = pa.table(
        {
            "true_ctr": [0.1, 0.3, 0.1, 0.3],
            "true_cvr": [0.1, 0.3, 0.2, 0.2],
            "group": ["a", "a", "b", "b"],
        }
    )
    weighted = (0.01 + 0.09 + 0.02 + 0.06) / 0.8
    assert resolution_bound(table, ()) == pytest.approx(weighted / 0.2)
    per_group = np.mean([0.1 / 0.4] * 2 + [0.08 / 0.4] * 2)
    assert resolution_bound(table, ("group",)) == pytest.approx(per_group / 0.2)


def test_unknown_variants_are_refused():
    with pytest.raises(ValueError, match="variants"):
        DiagnosisConfig(variants=["bigger towers"])
