"""The bypass's explored start in the auction: two ``ctr auction --explore SHARE`` runs of the same seeds, days and
requests whose model configs differ only in ``bypass_start``, paired per seed: ``ctr``'s (``"log"``, the control,
against ``"explored"``: the fall of the slice's rows, training/models/explored_start.py), or ``esmm``'s (the
committed ``"drawn"``, the control, against ``"explored"``, both runs' ``ctr`` explored).

- the pairing check: the oracle's days alike (it reads no model), and each seed's day 0 alike to the cent where the
  two runs' starts are alike on the history window (it holds no explored row, so the explored start falls back to
  the log's: ``ctr``'s log against explored, yes; ``esmm``'s drawn against explored, no);
- the debiased pipeline's figures over days 1 on (and 2 on: after the first retraining, whose window holds about 5 %
  explored rows), under GSP on every request in both runs (``gsp_*``, as
  reports/auction_explore.py reads the run with the slice): the published slot ratios r_k, the slot-k calibration
  pCTR x r_k / (theta_k x truth), the top-slot pCTR / truth, and the pCVR / true CVR of the shown impressions (the
  ctcvr model's own pCVR, which the service serves: service/score/pipeline.py); run − control per seed;
- its totals (``reports/auction_esmm_epochs.py``'s ``paired``: the slice's auctions included, alike in both runs);
- with ``--work-dir`` (the variant's, each part's) every version of each of the debiased pipeline's models (``ctr``,
  ``esmm``) the run trained: the start it used (model.json's ``training.bypass_start``), its explored rows' clicks
  by slot and their fall, and the ratios it published.

Means over seeds with Student t 95 % intervals (``clients/auction/report.py``).

    PYTHONPATH=. python reports/auction_explored_start.py --control reports/auction_explore_log_start.json \\
        --variant reports/auction_explore_explored_start.json --work-dir RUN_WORK_DIR ... \\
        --out reports/auction_explore_explored_start_against_log_start.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cli.reports import write_report
from clients.auction.merge import read_part
from reports.auction_esmm_epochs import OUTCOMES, SAME_SETTINGS, difference, difference_text, paired, seed_days
from reports.auction_explore import per_slot_differences

PIPELINE = "debiased"
PER_SLOT = ("slot_ratios", "gsp_slot_pctr_over_true_by_slot", "gsp_pctr_over_true_by_slot")  # days 1 on
PER_DAY = ("pcvr_over_true",)  # one figure a day (as a one-slot list in the per-slot summaries)
# the debiased pipeline's models: the report's keys of each one's versions and their summary
MODELS = {"ctr": ("versions", "version_summary"), "esmm": ("esmm_versions", "esmm_version_summary")}


def days_on(control: dict[str, Any], variant: dict[str, Any], first: int = 1) -> dict[str, Any]:
    """The pairing check (day 0 alike to the cent, and which days are) and each of ``PER_SLOT``'s per-slot means (and
    ``PER_DAY``'s means) over days ``first`` on, per seed, both runs and run − control, over the days neither had a
    failed scoring call."""
    before, after = seed_days(control, PIPELINE), seed_days(variant, PIPELINE)
    seeds = sorted(before.keys() & after.keys())
    sides: dict[str, dict[str, list[list[float]]]] = {key: {"control": [], "variant": []} for key in PER_SLOT + PER_DAY}
    day0_identical, identical_days = [], []
    for seed in seeds:
        c, v = before[seed], after[seed]
        kept = [d for d in range(min(len(c), len(v))) if not (c[d]["errors"] or v[d]["errors"])]
        alike = [d for d in kept if all(v[d][key] == c[d][key] for key in OUTCOMES)]
        day0_identical.append(int(0 in alike))
        identical_days.append(alike)
        later = [d for d in kept if d >= first]
        for key in sides if later else ():  # a run of fewer days has none to average
            sides[key]["control"].append(np.mean([np.atleast_1d(c[d][key]) for d in later], axis=0).tolist())
            sides[key]["variant"].append(np.mean([np.atleast_1d(v[d][key]) for d in later], axis=0).tolist())
    out: dict[str, Any] = {"seeds": seeds, "day0_identical": day0_identical, "identical_days": identical_days}
    for key, both in sides.items():
        if both["control"]:
            out[key] = per_slot_differences(both) | {"per_seed": both}
    return out


def versions(work_dirs: list[Path], model: str = "ctr") -> list[dict[str, Any]]:
    """Every version of ``model`` the debiased pipeline trained in the runs' work dirs: seed, version, the start it
    used and the counts it was decided on (model.json's ``training.bypass_start``), the explored rows' fall, and the
    ratios it published (``position.ctr_ratios``)."""
    out = []
    for work_dir in work_dirs:
        for path in sorted(work_dir.glob(f"seed*/{PIPELINE}/models/{model}/*/model.json")):
            manifest = json.loads(path.read_text(encoding="utf-8"))
            started = manifest["training"].get("bypass_start", {})
            clicks, rows = started.get("explored_clicks_by_slot"), started.get("explored_rows_by_slot")
            explored_fall = None
            if clicks and rows and all(rows) and clicks[0]:
                rates = np.divide(clicks, rows)
                explored_fall = (rates / rates[0]).tolist()
            out.append({
                "seed": int(path.parents[4].name.removeprefix("seed")),
                "version": int(path.parent.name),
                "used": started.get("used", "drawn" if not started else None),
                "explored_clicks_by_slot": clicks,
                "explored_rows_by_slot": rows,
                "explored_fall": explored_fall,
                "published": manifest["position"]["ctr_ratios"],
            })  # fmt: skip
    return sorted(out, key=lambda v: (v["seed"], v["version"]))


def version_summary(trained: list[dict[str, Any]]) -> dict[str, Any]:
    """How many versions used each start, and over those that used the explored one the mean explored fall (the
    start's ratios) beside the mean published ratios (where one epoch of training left them)."""
    used = [v for v in trained if v["used"] == "explored"]
    summary: dict[str, Any] = {
        "versions": len(trained),
        "used": {start: sum(v["used"] == start for v in trained) for start in sorted({v["used"] for v in trained})},
    }
    if used:
        summary["explored_versions"] = {
            "explored_fall": np.mean([v["explored_fall"] for v in used], axis=0).tolist(),
            "published": np.mean([v["published"] for v in used], axis=0).tolist(),
        }
    return summary


def compare(control: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    differing = [key for key in (*SAME_SETTINGS, "explore") if control["config"].get(key) != variant["config"].get(key)]
    if differing:
        raise SystemExit(f"the two runs differ in {differing}: not the same seeds, days, requests and slice")
    net = paired(control, variant, PIPELINE)
    gsp_days = {}
    before, after = seed_days(control, PIPELINE), seed_days(variant, PIPELINE)
    for key in OUTCOMES:  # days 1 on under GSP on every request: the slice's auctions left out of both
        gsp_days[key] = difference(
            [
                sum(after[s][d][f"gsp_{key}"] - before[s][d][f"gsp_{key}"] for d in net["days"][s] if d > 0)
                for s in net["seeds"]
            ]
        )
    return {
        "settings": {key: control["config"][key] for key in (*SAME_SETTINGS, "explore")},
        "model_configs": {"control": control.get("model_configs"), "variant": variant.get("model_configs")},
        "oracle_identical_days": paired(control, variant, "oracle")["identical_days"]
        if "oracle" in control["pipelines"]
        else None,
        "days_1_on": days_on(control, variant),
        "days_2_on": days_on(control, variant, 2),  # after the first retraining (~5 % explored rows: a fallback)
        "net": net,
        "gsp_days_1_on": gsp_days,
    }


def table(report: dict[str, Any]) -> str:
    days = report["days_1_on"]
    lines = [
        f"day 0 alike to the cent (per seed): {days['day0_identical']}; days alike: {days['identical_days']}",
        f"oracle days alike: {report['oracle_identical_days']}",
        f"{PIPELINE}, variant − control per seed [95% interval]:",
    ]
    for first in (1, 2):
        lines.append(f"  days {first} on:")
        for key in (k for k in PER_SLOT + PER_DAY if k in report[f"days_{first}_on"]):
            figures = report[f"days_{first}_on"][key]
            control = ", ".join(f"{x:.3f}" for x in figures["control"])
            variant = ", ".join(f"{x:.3f}" for x in figures["variant"])
            lines.append(f"  {key}: control {control}; run {variant}")
            for k, slot in enumerate(figures["variant_minus_control"]):
                lines.append(f"    {f'slot {k + 1}' if key in PER_SLOT else 'mean'}: {difference_text(slot)}")
    for key in ("welfare", "revenue", "clicks", "conversions"):
        lines.append(f"  net {key:12s} {difference_text(report['net'][key])}")
        lines.append(f"  gsp days 1 on {key:12s} {difference_text(report['gsp_days_1_on'][key])}")
    for model, (key, summary) in MODELS.items():
        if key not in report:
            continue
        lines.append(f"  {model} versions: {json.dumps(report[summary])}")
        for v in report[key]:
            fall = v["explored_fall"] and ", ".join(f"{x:.2f}" for x in v["explored_fall"])
            published = ", ".join(f"{x:.3f}" for x in v["published"])
            lines.append(
                f"    seed {v['seed']} v{v['version']}: {v['used']}, explored clicks {v['explored_clicks_by_slot']} "
                f"(fall {fall}), published {published}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--control", type=Path, required=True, help="the run with the other start (log, or drawn)")
    parser.add_argument("--variant", type=Path, required=True, help="the run with bypass_start = 'explored'")
    parser.add_argument(
        "--out", type=Path, default=Path("reports/auction_explore_explored_start_against_log_start.json")
    )
    parser.add_argument("--work-dir", type=Path, nargs="*", default=[], help="the variant's --work-dir (each part's)")
    args = parser.parse_args(argv)
    report = compare(read_part(args.control), read_part(args.variant))
    for model, (key, summary) in MODELS.items() if args.work_dir else ():
        report[key] = versions(args.work_dir, model)
        report[summary] = version_summary(report[key])
    report["command"] = " ".join(["python reports/auction_explored_start.py", *sys.argv[1:]])
    sys.stdout.write(table(report) + "\n")
    write_report(args.out, report)


if __name__ == "__main__":
    main()
