"""Convert the committed Moore 2018 and ESAM reports' std from the population to the sample standard deviation.

Every experiment's mean ± std now goes through ``training/experiments/summary.py`` (ddof 1; None for one
run). The cvr experiment always computed it so; ``ctr experiment moore2018``, ``moore2018-checks`` and
``esam`` computed the population one (``np.std``, ddof 0), which understates the spread between a few
runs. Re-running those sweeps takes 5 to 17 CPU minutes each, so their committed reports are converted instead: for n
runs, sample std = population std x sqrt(n / (n - 1)), and null where n = 1 (no spread to estimate).

Which fields are a std over runs, and their n (read from each report's own config, checked against it):

* moore2018 reports (``reports/moore2018.json``, ``_seeds``, ``_correlation``, ``_correlation_small``):
  every ``{"mean", "std"}`` of each row of ``bypass`` and ``no_bypass``, and ``untrained`` (a copy of
  the first row's ``untrained_rus_auc``): n = ``config.loop_seeds`` x ``config.initialisations``, all
  the networks trained for that (variant, lambda); the report keeps no per-run values to check against
  (``rus_auc_by_loop`` are means). ``loops[*].window_feature_std`` is the spread of one loop's feature
  values, not of runs: left as it is.
* ``reports/moore2018_checks.json``: ``collapse``'s ``largest_weight_share``, ``fl_lr_rus_auc``,
  ``ideal_rus_auc``, ``ideal_window_size_rus_auc``: n = ``collapse.loops`` (= ``config.loop_seeds``),
  and the values are in ``loops``: the old std is checked to be their population std, the new their
  sample std. ``learning_rate_equivalence`` holds means only.
* ESAM reports (``reports/esam.json``, ``reports/esam_ids.json``): ``variants.*.*.*``: n =
  ``config.seeds``; the values are in ``per_seed``, checked as for the checks report.

A converted report gets ``"std_kind": "sample (ddof 1)"`` (``summary.STD_KIND``, which the experiments
now write themselves) after its ``config``, or in key order where the keys are sorted (esam's); a report
that has it is skipped, so running this twice, or on a report written by the current code, changes
nothing. ``reports/esam_eval.json`` (one model, no std) and the cvr reports (sample std already) are not
among the defaults.

    PYTHONPATH=. python reports/sample_std_from_population.py [REPORT.json ...]

Run once, with the defaults, in the commit that made every report's ± the sample std; that commit also
redrew the four moore2018 PNGs' error bars from the converted reports (``moore2018_report.plot``; the
checks' and ESAM's pictures show no std).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from training.experiments.summary import STD_KIND

DEFAULTS = (
    "reports/moore2018.json",
    "reports/moore2018_seeds.json",
    "reports/moore2018_correlation.json",
    "reports/moore2018_correlation_small.json",
    "reports/moore2018_checks.json",
    "reports/esam.json",
    "reports/esam_ids.json",
)
CHECKS_FIELDS = {  # collapse's std fields -> the per-loop value they summarise
    "largest_weight_share": "fl_lr_largest_weight_share",
    "fl_lr_rus_auc": "fl_lr_rus_auc",
    "ideal_rus_auc": "ideal_rus_auc",
    "ideal_window_size_rus_auc": "ideal_window_size_rus_auc",
}


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)


def _moore2018(report: dict[str, Any]) -> tuple[int, Iterator[tuple[dict[str, Any], list[float] | None]]]:
    config = report["config"]
    n = config["loop_seeds"] * config["initialisations"]
    assert len(report["loops"]) == config["loop_seeds"], "loops and config.loop_seeds disagree"
    # untrained is the first row's untrained_rus_auc, written twice: made the same dict, converted once
    untrained = report["untrained"]
    for variant, value in untrained.items():
        assert value == report[variant][0]["untrained_rus_auc"], "untrained is not the first row's"
        untrained[variant] = report[variant][0]["untrained_rus_auc"]

    def fields() -> Iterator[tuple[dict[str, Any], list[float] | None]]:
        for variant in ("bypass", "no_bypass"):
            for row in report[variant]:
                assert len(row["rus_auc_by_loop"]) == config["loop_seeds"]
                yield from ((value, None) for value in row.values() if isinstance(value, dict))

    return n, fields()


def _checks(report: dict[str, Any]) -> tuple[int, Iterator[tuple[dict[str, Any], list[float] | None]]]:
    collapse, loops = report["collapse"], report["loops"]
    n = collapse["loops"]
    assert n == len(loops) == report["config"]["loop_seeds"], "collapse.loops, loops and loop_seeds disagree"
    return n, ((collapse[field], [loop[key] for loop in loops]) for field, key in CHECKS_FIELDS.items())


def _esam(report: dict[str, Any]) -> tuple[int, Iterator[tuple[dict[str, Any], list[float] | None]]]:
    n, per_seed = report["config"]["seeds"], report["per_seed"]
    assert n == len(per_seed), "config.seeds and per_seed disagree"
    return n, (
        (value, [run[variant][group][metric] for run in per_seed])
        for variant, groups in report["variants"].items()
        for group, metrics in groups.items()
        for metric, value in metrics.items()
    )


def convert(report: dict[str, Any]) -> tuple[int, int]:
    """Rewrite ``report``'s std-over-runs fields in place; returns (n, fields converted)."""
    if "collapse" in report:
        n, fields = _checks(report)
    elif "bypass" in report and "untrained" in report:
        n, fields = _moore2018(report)
    elif "variants" in report and "per_seed" in report:
        n, fields = _esam(report)
    else:
        raise ValueError("neither a moore2018, a moore2018-checks nor an esam report")
    count = 0
    for value, runs in fields:
        assert set(value) >= {"mean", "std"}, value
        population = value["std"]
        if runs is not None:  # the values are in the report: check what the std was, and what it becomes
            assert len(runs) == n and _close(population, float(np.std(runs))), "not the population std of the runs"
        value["std"] = population * math.sqrt(n / (n - 1)) if n > 1 else None
        if runs is not None and n > 1:
            assert _close(value["std"], float(np.std(runs, ddof=1)))
        count += 1
    return n, count


def _with_kind(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with ``std_kind`` right after ``config``, where the experiments now write it."""
    out: dict[str, Any] = {}
    for key, value in report.items():
        out[key] = value
        if key == "config":
            out["std_kind"] = STD_KIND
    out.setdefault("std_kind", STD_KIND)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="*", type=Path, default=[Path(p) for p in DEFAULTS])
    for path in parser.parse_args(argv).reports:
        text = path.read_text(encoding="utf-8")
        report = json.loads(text)
        if report.get("std_kind") == STD_KIND:
            sys.stdout.write(f"{path}: std_kind {STD_KIND!r} already, skipped\n")
            continue
        # written by cli.reports.write_report: indent 2, keys sorted (esam) or in the experiment's order (moore2018)
        sort_keys = json.dumps(report, indent=2, sort_keys=True) + "\n" == text
        n, count = convert(report)
        path.write_text(
            json.dumps(_with_kind(report), indent=2, sort_keys=sort_keys, allow_nan=False) + "\n", encoding="utf-8"
        )
        factor = f"x {math.sqrt(n / (n - 1)):.4f}" if n > 1 else "null"
        sys.stdout.write(f"{path}: {count} std fields over n = {n} runs, {factor}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
