"""One epoch or two for the auction's ``esmm``: two ``ctr auction`` runs of the same seeds, days and requests,
whose service pipelines' configs differ only in the epochs of the debiased pipeline's ``esmm`` (the committed
2-epoch ``models/esmm/config.toml``, the control, against a copy with ``epochs = 1``).

Per seed, the debiased pipeline's totals over the days both runs ran (none with a failed scoring call) are
paired: variant − control, mean and Student t 95% interval over the seeds (``clients/auction/report.py``'s
``seed_total`` and ``ci95``, as ``ctr auction``'s own comparisons). The naive and oracle pipelines do not read
``esmm``'s config: their days are compared too, as a check that the two runs drew the same worlds, traffic and
outcomes (a difference there is the runs' own noise, e.g. the services' batching, not the epochs).

``--uniform-check`` tests one explanation of what the epochs change: that the debiased pipeline's revenue and its
advertisers' surplus move with its pCVR's over-estimate (oCPA advertisers bid their CPA times pCVR). It runs the
oracle's days of the same seeds (``reports/auction_score_bias.py``'s ``run_scenario``) with its true CVR times each
run's mean pCVR / true CVR, uniformly, and pairs the two per seed as above: a uniform bias alone moving revenue
and surplus as the runs did supports it; one that leaves them where they were refutes it.

    PYTHONPATH=. python reports/auction_esmm_epochs.py --control CONTROL.json --variant ONE_EPOCH.json \
        [--out reports/auction_esmm_epochs.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cli.reports import write_report
from clients.auction.merge import read_part
from clients.auction.report import COMPARED, ci95, seed_total
from clients.auction.run import AuctionConfig
from reports.auction_score_bias import run_scenario

PAIRED = (*COMPARED, "pcvr_over_true")  # sums per seed, then the seed's mean pCVR / true CVR
SLOT1_PCTR = "pctr_over_true_by_slot"  # its slot-1 entry: the top slot's pCTR / true CTR
OUTCOMES = ("welfare", "revenue", "clicks", "conversions", "impressions")
SAME_SETTINGS = ("days", "requests_per_day", "slots", "candidates", "seeds", "first_seed", "train_days", "reserve")


def seed_days(report: dict[str, Any], pipeline: str) -> dict[int, list[dict[str, Any]]]:
    """Seed -> the pipeline's days in ``report``."""
    return {run["seed"]: run["days"] for run in report["pipelines"][pipeline]["seeds"]}


def difference(per_seed: list[float]) -> dict[str, Any]:
    """Variant − control per seed: its mean, Student t 95% interval over the seeds and the seeds' own values."""
    return {
        "variant_minus_control": float(np.mean(per_seed)),
        "ci95": ci95(per_seed),
        "per_seed": [float(d) for d in per_seed],
    }


def difference_text(figures: dict[str, Any]) -> str:
    """A ``difference`` as the terminal shows it: "+mean [low, high]  (per seed)"."""
    interval = figures["ci95"]
    bounds = f"[{interval[0]:+.3f}, {interval[1]:+.3f}]" if interval else "[one seed]"
    seeds = ", ".join(f"{d:+.3f}" for d in figures["per_seed"])
    return f"{figures['variant_minus_control']:+10.3f} {bounds}  ({seeds})"


def paired(
    control: dict[str, Any], variant: dict[str, Any], pipeline: str, variant_pipeline: str | None = None
) -> dict[str, Any]:
    """The pipeline's variant − control per seed, over the days both ran without a failed call; the variant's
    ``variant_pipeline`` where given (another pipeline of the same seeds, days and requests), else the same."""
    before, after = seed_days(control, pipeline), seed_days(variant, variant_pipeline or pipeline)
    seeds = sorted(before.keys() & after.keys())
    totals: dict[str, list[dict[str, Any]]] = {"control": [], "variant": []}
    kept_days = {}
    for seed in seeds:
        days = min(len(before[seed]), len(after[seed]))
        kept = [d for d in range(days) if not (before[seed][d]["errors"] or after[seed][d]["errors"])]
        kept_days[seed] = kept
        totals["control"].append(seed_total([before[seed][d] for d in kept]))
        totals["variant"].append(seed_total([after[seed][d] for d in kept]))
    entry: dict[str, Any] = {"seeds": seeds, "days": kept_days}
    for key in (*PAIRED, SLOT1_PCTR):
        values = {
            side: [t[key][0] if key == SLOT1_PCTR else t[key] for t in totals[side]] for side in ("control", "variant")
        }
        name = "slot1_pctr_over_true" if key == SLOT1_PCTR else key
        entry[name] = {side: float(np.mean(values[side])) for side in ("control", "variant")} | difference(
            list(np.subtract(values["variant"], values["control"]))
        )
    entry["identical_days"] = sum(  # the same auctions won and paid for: outcomes alike to the cent
        all(before[seed][d][key] == after[seed][d][key] for key in OUTCOMES)
        for seed in seeds
        for d in range(min(len(before[seed]), len(after[seed])))
    )
    return entry


def compare(control: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    """The report: the settings both runs share, then each pipeline's paired differences."""
    differing = [key for key in SAME_SETTINGS if control["config"][key] != variant["config"][key]]
    if differing:
        raise SystemExit(f"the two runs differ in {differing}: not the same seeds, days and requests")
    configs = {side: report.get("model_configs", {}) for side, report in (("control", control), ("variant", variant))}
    return {
        "settings": {key: control["config"][key] for key in SAME_SETTINGS},
        "model_configs": configs,
        "pipelines": {
            name: paired(control, variant, name) for name in control["pipelines"] if name in variant["pipelines"]
        },
    }


def uniform_check(report: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    """The oracle's days with pCVR times the control's, then the variant's, mean pCVR / true CVR (the debiased
    pipeline's), paired per seed (``--uniform-check``)."""
    bias = report["pipelines"]["debiased"]["pcvr_over_true"]
    settings = {
        key: control["config"][key]
        for key in ("days", "requests_per_day", "slots", "candidates", "seeds", "train_days", "ocpa_share")
    }
    config = AuctionConfig(**settings, first_seed=0, reserve=control["config"]["reserve"])
    if control["config"]["first_seed"] != 0:
        raise SystemExit("--uniform-check needs the runs to start at seed 0 (run_scenario's seeds)")
    totals = {side: run_scenario(config, 1.0, bias[side]) for side in ("control", "variant")}
    out: dict[str, Any] = {"pcvr_scale": {side: bias[side] for side in totals}}
    for key in ("welfare", "revenue", "advertiser_surplus", "conversions"):
        out[key] = difference([v[key] - c[key] for c, v in zip(totals["control"], totals["variant"], strict=True)])
    return out


def table(report: dict[str, Any]) -> str:
    """The pipelines' paired differences as lines for the terminal."""
    lines = ["pipeline  key  control  variant  variant-control [95% interval]  per seed"]
    for name, entry in report["pipelines"].items():
        lines.append(f"{name}: {entry['identical_days']} identical days")
        for key, figures in entry.items():
            if not isinstance(figures, dict) or "ci95" not in figures:
                continue
            lines.append(
                f"  {key:22s} {figures['control']:10.3f} {figures['variant']:10.3f} {difference_text(figures)}"
            )
    check = report.get("uniform_check")
    if check:
        scale = check["pcvr_scale"]
        lines.append(f"oracle with pCVR x {scale['control']:.3f} (control) and x {scale['variant']:.3f} (variant):")
        for key in ("welfare", "revenue", "advertiser_surplus", "conversions"):
            lines.append(f"  {key:22s} {difference_text(check[key])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--control", type=Path, required=True, help="the run with the committed 2-epoch esmm")
    parser.add_argument("--variant", type=Path, required=True, help="the run with esmm at 1 epoch")
    parser.add_argument("--out", type=Path, default=Path("reports/auction_esmm_epochs.json"))
    parser.add_argument("--uniform-check", action="store_true", help="the oracle with each run's pCVR bias")
    args = parser.parse_args(argv)
    control = read_part(args.control)
    report = compare(control, read_part(args.variant))
    if args.uniform_check:
        report["uniform_check"] = uniform_check(report, control)
    report["command"] = " ".join(["python reports/auction_esmm_epochs.py", *sys.argv[1:]])
    sys.stdout.write(table(report) + "\n")
    write_report(args.out, report)


if __name__ == "__main__":
    main()
