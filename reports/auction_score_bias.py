"""How much of the auction pipelines' regret a uniform score bias alone explains: the oracle (true top-slot
CTR and true CVR) with its pCVR or its pCTR multiplied by one factor, through the auction's own day
(clients/auction/day.py ``run_day``) on the default run's seeds, days and requests (``AuctionConfig()``:
3 seeds x 5 days x 2,000 auctions, 3 slots, reserve 0.2, the same advertisers and outcome draws).

The factors are the biases ``--report`` measured (a pipeline's total ``pcvr_over_true``, and its top-slot
``pctr_over_true_by_slot`` at slot 1); a scaled probability is capped at 1. The pipelines' biases are not
uniform (they vary by ad and by day): this isolates the uniform part. Regret is the expected welfare of the
oracle's allocation minus that of the allocation made with the scaled scores (the report's ``regret``);
``oCPA slot 1``: the share of slot 1's impressions won by oCPA advertisers (the report's ``ocpa_share_by_slot``).

    PYTHONPATH=. python reports/auction_score_bias.py [--report reports/auction.json] \
        [--out reports/auction_score_bias.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cli.reports import write_report
from clients.auction.day import SlotRatios, run_day
from clients.auction.pipelines import DayScores, oracle_scores
from clients.auction.report import ci95, seed_total
from clients.auction.run import AuctionConfig
from clients.auction.traffic import draw_day

BIASED_PIPELINES = ("naive", "debiased")


def scenarios(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The oracle as it is, then with each biased pipeline's pCVR factor, then with its slot-1 pCTR factor."""
    out = [{"name": "oracle", "pctr_scale": 1.0, "pcvr_scale": 1.0}]
    for name in BIASED_PIPELINES:
        total = report["pipelines"][name]["total"]
        out.append({"name": f"pCVR x {name}'s bias", "pctr_scale": 1.0, "pcvr_scale": total["pcvr_over_true"]})
    for name in BIASED_PIPELINES:
        total = report["pipelines"][name]["total"]
        out.append(
            {"name": f"pCTR x {name}'s bias", "pctr_scale": total["pctr_over_true_by_slot"][0], "pcvr_scale": 1.0}
        )
    return out


def run_scenario(config: AuctionConfig, pctr_scale: float, pcvr_scale: float) -> list[dict[str, Any]]:
    """Per seed, the totals of the oracle's days with its scores scaled (``seed_total`` of the report)."""
    totals = []
    for seed in range(config.seeds):
        world = config.world(seed)
        advertisers = config.advertisers(world, seed)
        days = []
        for day in range(config.days):
            requests = draw_day(world, seed, day, config.requests_per_day, config.train_days)
            truth = oracle_scores(world, requests)
            scaled = DayScores(
                pctr=np.minimum(truth.pctr * pctr_scale, 1.0), pcvr=np.minimum(truth.pcvr * pcvr_scale, 1.0)
            )
            outcome = run_day(world, advertisers, requests, scaled, config.reserve, SlotRatios.of_world(world))
            days.append(outcome.metrics | {"p50_ms": None, "p99_ms": None, "errors": 0, "resent": 0, "retried": 0})
        totals.append(seed_total(days))
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, default=Path("reports/auction.json"))
    parser.add_argument("--out", type=Path, default=Path("reports/auction_score_bias.json"))
    args = parser.parse_args()
    report = json.loads(args.report.read_text(encoding="utf-8"))
    config = AuctionConfig()
    for key in ("days", "requests_per_day", "slots", "candidates", "seeds", "train_days", "reserve", "ocpa_share"):
        if report["config"][key] != getattr(config, key):
            raise SystemExit(f"{args.report} was run with {key} = {report['config'][key]}, not the default run's")
    pipeline_share = {name: report["pipelines"][name]["total"]["regret_share"] for name in BIASED_PIPELINES}
    rows = []
    for scenario in scenarios(report):
        totals = run_scenario(config, scenario["pctr_scale"], scenario["pcvr_scale"])
        shares = [t["regret_share"] for t in totals]
        share = float(np.mean(shares))
        rows.append(
            scenario
            | {
                "regret_share": share,
                "regret_share_ci95": ci95(shares),
                "regret_share_by_seed": shares,
                "regret": float(np.mean([t["regret"] for t in totals])),
                "welfare": float(np.mean([t["welfare"] for t in totals])),
                "ocpa_share_slot1": float(np.mean([t["ocpa_share_by_slot"][0] for t in totals])),
                "of_pipeline_regret_share": {name: share / value for name, value in pipeline_share.items()},
            }
        )
    write_report(
        args.out,
        {
            "command": "PYTHONPATH=. python reports/auction_score_bias.py " + " ".join(sys.argv[1:]),
            "report": str(args.report),
            "pipeline_regret_share": pipeline_share,
            "scenarios": rows,
        },
    )
    header = (
        "| scores | pCTR x | pCVR x | regret share (per seed) | of naive's | of debiased's | welfare | oCPA slot 1 |\n"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|\n"]
    for row in rows:
        seeds = ", ".join(f"{s:.4f}" for s in row["regret_share_by_seed"])
        of = row["of_pipeline_regret_share"]
        lines.append(
            f"| {row['name']} | {row['pctr_scale']:.2f} | {row['pcvr_scale']:.2f} | {row['regret_share']:.4f} "
            f"({seeds}) | {of['naive']:.1%} | {of['debiased']:.1%} | {row['welfare']:,.0f} "
            f"| {row['ocpa_share_slot1']:.2f} |\n"
        )
    shares = ", ".join(f"{name} {value:.3f}" for name, value in pipeline_share.items())
    lines.append(f"\npipelines' regret share in {args.report}: {shares}\nwrote {args.out}\n")
    sys.stdout.write("".join(lines))


if __name__ == "__main__":
    main()
