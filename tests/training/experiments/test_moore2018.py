import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from training.experiments.feedback_loop import FeedbackLoopConfig, first_selected, simulate
from training.torch_threads import using_torch_threads


def test_first_selected_matches_drawing_sets_without_replacement():
    rng = np.random.default_rng(0)
    n_items, n_drawn, trials = 500, 50, 4000
    exact = first_selected(np.full(trials, n_items), np.full(trials, n_drawn), rng.random(trials))
    brute = np.array([rng.choice(n_items, n_drawn, replace=False).min() for _ in range(trials)])
    assert abs(exact.mean() - brute.mean()) < 0.6  # both about (N - n) / (n + 1) = 8.8
    assert abs(np.median(exact) - np.median(brute)) <= 1


def test_feedback_loop_puts_more_clicks_at_position_1_and_r_removes_position_2_clicks():
    config = FeedbackLoopConfig(reservoir=10_000, k=400, candidates_per_set=2000, days=6, rus=1000)
    run = simulate(config)
    assert len(run.position_ctr_by_day) == 6 and len(run.window) == 800
    ctr = np.array(run.position_ctr_by_day)
    assert ctr[:, 0].mean() > ctr[:, 1].mean() > 0.1  # ranked rows beat the base rate, position 1 most
    flipped = simulate(FeedbackLoopConfig(**{**config.__dict__, "r": 1.0}))
    assert all(p2 == 0.0 for _, p2 in flipped.position_ctr_by_day)


def run_experiment(out, *arguments: str):
    """``ctr experiment ARGUMENTS --out OUT`` run to success: (the CLI's result, the report it wrote)."""
    result = CliRunner().invoke(app, ["experiment", *arguments, "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result, json.loads(out.read_text())


def test_quick_experiment_writes_report_and_plot(tmp_path):
    out = tmp_path / "moore2018.json"
    result, report = run_experiment(out, "moore2018", "--quick")
    for key in ("position_ctr_by_day", "last_day_position1_ctr", "naive_b_mse", "ideal_rus_auc"):
        assert key in report
    assert {"ideal_rus_logloss", "fl_lr_rus_auc"} <= set(report)
    assert {"ideal_window_size_rus_auc", "bayes_rus_auc", "loops"} <= set(report)
    assert report["std_kind"] == "sample (ddof 1)"  # over the 2 initialisations of the one loop
    for variant in ("bypass", "no_bypass"):
        assert [row["lambda"] for row in report[variant]] == [0.0, 0.99, 0.9999]
        for row in report[variant]:
            for key in ("fl_auc", "rus_auc", "fl_b_mse", "rus_b_mse", "weight_change", "grad_click", "grad_adversary"):
                assert set(row[key]) == {"mean", "std"}
        # the untrained networks are the same initialisations as every lambda's
        assert report["untrained"][variant] == report[variant][-1]["untrained_rus_auc"]
        assert report[variant][0]["adversary_share"]["mean"] == 0.0  # lambda = 0: no adversary in the step
        assert report[variant][0]["weight_change"]["mean"] > report[variant][-1]["weight_change"]["mean"]
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert "naive MSE on b" in result.output and "untrained nets RUS AUC" in result.output


def test_quick_experiment_over_two_loops_with_the_correlation_penalty(tmp_path):
    out = tmp_path / "corr.json"
    arguments = ["moore2018", "--quick", "--adversary-loss", "correlation"]
    arguments += ["--lambdas", "0,0.5", "--loop-seeds", "2", "--initialisations", "1"]
    _, report = run_experiment(out, *arguments)
    assert report["config"]["adversary_loss"] == "correlation"
    assert [loop["seed"] for loop in report["loops"]] == [0, 1]
    assert len(report["bypass"][1]["rus_auc_by_loop"]) == 2
    # the correlation's gradient on the Base network is not negligible beside the click loss's
    assert report["bypass"][1]["adversary_share"]["mean"] > 0.1


def test_one_run_has_no_spread_in_the_report_the_table_or_the_plot(tmp_path):
    """One loop, one initialisation: the population std wrote 0.0 and the table '±0.0000' as if it were known.
    The run trains on one torch thread and gives the caller's count back (it left the process on one)."""
    out = tmp_path / "one.json"
    with using_torch_threads(2):
        result, report = run_experiment(out, "moore2018", "--quick", "--lambdas", "0", "--initialisations", "1")
        assert torch.get_num_threads() == 2
    assert report["bypass"][0]["rus_auc"]["std"] is None and report["untrained"]["bypass"]["std"] is None
    assert "untrained nets RUS AUC" in result.output and "±" not in result.output
    assert out.with_suffix(".png").stat().st_size > 10_000


def test_bad_penalty_or_lambda_is_a_usage_error(tmp_path):
    for flag, value in (("--adversary-loss", "variance"), ("--lambdas", "0,1")):
        result = CliRunner().invoke(app, ["experiment", "moore2018", "--quick", flag, value, "--out", str(tmp_path)])
        assert result.exit_code == 2 and "Invalid value" in result.output


def test_quick_checks_show_lambda_as_a_learning_rate_for_the_covariance_only(tmp_path):
    out = tmp_path / "checks.json"
    _, report = run_experiment(out, "moore2018-checks", "--quick", "--loop-seeds", "2", "--initialisations", "1")
    assert report["collapse"]["loops"] == 2 and len(report["loops"]) == 2
    shares = [loop["fl_lr_largest_weight_share"] for loop in report["loops"]]
    assert report["collapse"]["largest_weight_share"]["std"] == pytest.approx(np.std(shares, ddof=1))
    rows = {(r["penalty"], r["lambda"], r["variant"]): r for r in report["learning_rate_equivalence"]}
    covariance, correlation = rows[("covariance", 0.99, "bypass")], rows[("correlation", 0.5, "bypass")]
    assert covariance["max_abs_pctr_difference"] < 1e-5  # Loss_N at lr == click loss at lr (1 - lambda)
    assert covariance["weight_gap_over_movement"] < 0.05
    assert correlation["weight_gap_over_movement"] > 0.2  # the correlation's term moves the weights itself
    assert out.with_suffix(".png").stat().st_size > 10_000
