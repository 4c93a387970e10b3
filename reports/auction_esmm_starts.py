"""Where the ``esmm``'s bypass start reaches the auction: each debiased window of a ``ctr auction`` run trained again
as ``clients/auction/retrain.py`` trains its ``esmm`` (reports/auction_constant_warnings.py's ``window_training``),
its configured 2 epochs, from each start of the bypass (``bypass_start``: ``drawn``, the committed config's; ``log``;
``explored``, training/models/explored_start.py), the other weights drawn alike (training seed 0, the run's):

- the ratios it publishes (model.json's ``position.ctr_ratios``, on every row as ``ctr train`` computes them) and the
  start it used (an explored start falls back to the log's where the window's explored clicks are too few);
- its mean pCVR over the mean true CVR of the served day's shown impressions (the run's ``pcvr_over_true``: the
  service serves the ctcvr model's own pCVR, service/score/pipeline.py, so the bypass reaches the auction through
  what it does to the CVR tower's training alone) and of the window's validation tail;

beside the window's θ and logged fall (reports/auction_slot_ratios.py's ``yardsticks``), its explored rows' clicks
and fall, and the run's own esmm ratios and ``pcvr_over_true`` for that window's model (the check that it was
rebuilt: the run's start). Summaries over every window and over those served on days 2 on (after the first
retraining, whose window holds about 5 % explored rows), with each start − the drawn start per seed (means of its
windows), Student t 95 % intervals over the seeds.

    PYTHONPATH=. nice -n 15 python reports/auction_esmm_starts.py --work-dir RUN_PART --run-json RUN_PART.json \\
        --out /tmp/esmm_starts_a.json   # each part of the run
    PYTHONPATH=. python reports/auction_esmm_starts.py --records /tmp/esmm_starts_a.json /tmp/esmm_starts_b.json \\
        [--run-json RUN.json] --out reports/auction_explore_esmm_starts_windows.json

(``--seeds``: the run seeds to study; ``--run-json`` with ``--records``: the run's JSON whose ``pcvr_over_true`` fills
the check where a part was studied before its run's JSON was written.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cli.reports import write_report
from clients.auction.report import ci95
from reports.auction_constant_warnings import window_training
from reports.auction_explored_windows import explored_fall
from reports.auction_pcvr_bias import pcvr, run_record, studied_or_joined, truth, window_records
from reports.auction_slot_ratios import mean_ratios, published, yardsticks
from training.fitting.fit import fit, validation_cut
from training.models.position_bypass import position_summary
from training.models.registry import build_model

MODEL = "esmm"
STARTS = ("drawn", "log", "explored")
FIRST_LATER_DAY = 2  # served days 2 on: windows with a day of the slice in full


def window_record(window: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """One window's yardsticks, explored rows, the run's figures and each start's."""
    built = window_training(window, scratch, MODEL)
    cut = validation_cut(len(built.data), built.settings.validation_fraction)
    marks = yardsticks(built, cut)
    explored, fall = explored_fall(built.parts["train"].tensors, len(marks["theta"]))
    day_cvr = truth(window["served_day"], built.spec)["true_cvr"]
    valid_cvr = truth(built.joined, built.spec)["true_cvr"][cut:]
    states = {}
    for start in STARTS:
        model = build_model(built.config.kind, built.spec, built.config.model | {"bypass_start": start}, seed=0)
        fit(model, built.data, built.settings, progress=False)
        states[start] = {
            "used": (model.bypass_started or {}).get("used", start),
            "ratios": position_summary(model, built.data.tensors)["ctr_ratios"],
            "pcvr_over_true_served_day": float(pcvr(model, built.parts["served_day"]).mean() / day_cvr.mean()),
            "pcvr_over_true_validation": float(pcvr(model, built.parts["validation"]).mean() / valid_cvr.mean()),
        }
    return {key: window[key] for key in ("seed", "window")} | {
        "served_day": int(window["served_day"].stem[3:]),
        "run_start": built.config.model.get("bypass_start", "drawn"),
        "theta": marks["theta"],
        "logged": marks["logged"],
        "explored_clicks_by_slot": explored.clicks_by_slot,
        "explored_fall": fall,
        "run_published": published(window, MODEL),
        "states": states,
    }


def per_seed_differences(records: list[dict[str, Any]], start: str, get) -> dict[str, Any]:
    """``get(state)`` of ``start`` − of the drawn start, each seed's mean over its windows; mean and 95 % interval
    over the seeds, per element."""
    seeds = sorted({r["seed"] for r in records})
    gaps = np.array(
        [
            np.mean(
                [
                    np.atleast_1d(np.subtract(get(r["states"][start]), get(r["states"]["drawn"])))
                    for r in records
                    if r["seed"] == s
                ],
                axis=0,
            )
            for s in seeds
        ]
    )
    return {
        "mean": gaps.mean(axis=0).tolist(),
        "ci95": [ci95(list(gaps[:, k])) for k in range(gaps.shape[1])],
        "per_seed": gaps.tolist(),
    }


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Over every window and over those served on days 2 on: each start's means, its − the drawn start's per seed,
    how many windows used each start, and the largest gap between a rebuilt run's start and the run's figures."""
    out: dict[str, Any] = {}
    later = [r for r in records if r["served_day"] >= FIRST_LATER_DAY]
    for label, mine in (("all windows", records), ("served days 2 on", later)):
        if not mine:  # a run of fewer days
            continue
        entry: dict[str, Any] = {
            "windows": len(mine),
            "theta": mean_ratios(mine, lambda r: r["theta"]),
            "logged": mean_ratios(mine, lambda r: r["logged"]),
        }
        for start in STARTS:
            states = [r["states"][start] for r in mine]
            entry[start] = {
                "used": {used: sum(s["used"] == used for s in states) for used in sorted({s["used"] for s in states})},
                "ratios": mean_ratios(states, lambda s: s["ratios"]),
                **{
                    key: float(np.mean([s[key] for s in states]))
                    for key in ("pcvr_over_true_served_day", "pcvr_over_true_validation")
                },
            }
            if start != "drawn":
                entry[f"{start} − drawn"] = {
                    key: per_seed_differences(mine, start, lambda s, k=key: s[k])
                    for key in ("ratios", "pcvr_over_true_served_day", "pcvr_over_true_validation")
                }
        out[label] = entry
    rebuilt = [(r, r["states"][r["run_start"]]) for r in records]
    out["largest_rebuild_gap"] = {
        "ratios": max(float(np.max(np.abs(np.subtract(s["ratios"], r["run_published"])))) for r, s in rebuilt),
        "pcvr_over_true": max(
            (
                abs(s["pcvr_over_true_served_day"] - r["run_pcvr_over_true"])
                for r, s in rebuilt
                if r.get("run_pcvr_over_true") is not None
            ),
            default=None,
        ),
    }
    return out


def study(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``window_record`` of every debiased window of each ``args.work_dir``, with its run's ``pcvr_over_true``."""
    return window_records(args, window_record, json.dumps)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, action="append", default=[], help="a run part's --work-dir")
    parser.add_argument(
        "--run-json",
        type=Path,
        action="append",
        default=[],
        help="each work dir's ctr auction JSON (or, with --records, the runs')",
    )
    parser.add_argument("--seeds", type=str, default=None, help="comma-separated run seeds (default: all found)")
    parser.add_argument("--train-days", type=int, default=2)
    parser.add_argument("--records", type=Path, nargs="*", help="join these outputs of earlier runs, no training")
    parser.add_argument("--out", type=Path, default=Path("reports/auction_explore_esmm_starts_windows.json"))
    args = parser.parse_args(argv)
    records, report = studied_or_joined(args, "reports/auction_esmm_starts.py", study)
    for record in records if args.records else ():  # parts studied before their run's JSON was written
        if record.get("run_pcvr_over_true") is None:
            found = (run_record(path, record["seed"], record["served_day"]) for path in args.run_json)
            record["run_pcvr_over_true"] = next((x for x in found if x is not None), None)
    result = summary(records)
    write_report(args.out, report | {"summary": result, "windows": records})
    sys.stdout.write(json.dumps(result, indent=1) + f"\nwrote {args.out}\n")


if __name__ == "__main__":
    main()
