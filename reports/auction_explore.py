"""What an exploration slice (``ctr auction --explore SHARE``) costs and what its logs do for the models: a run with
the slice against a control run of the same seeds, days and requests without it, paired per seed.

Each exploring pipeline's day records its totals (slice included), its slice's own figures (``slice_*``) and the
day's had the same scores run GSP on the slice too (``gsp_*``: clients/auction/explore.py). So per seed:

- **net**: the run's totals − the control's (``reports/auction_esmm_epochs.py``'s ``paired``: every figure it pairs);
- **cost**: the run's totals − its ``gsp_*``: the uniform order against GSP on the slice's requests, by the same
  models, on the same draws;
- **benefit**: the run's ``gsp_*`` − the control's totals: every request under GSP, by models that trained on the
  slice's logs against models that did not. Day 0, before any retraining, is the same models: alike to the cent
  (``day0_identical``, the check that the two runs drew the same worlds, traffic and outcomes); the benefit is
  summed over days 1 on, where the models had retrained on windows with the slice's rows;
- the models' position effect and calibration over days 1 on, under GSP on every request in both runs: the
  published slot ratios r_k, the slot-k calibration pCTR x r_k / (theta_k x truth) and the top-slot pCTR / truth;
- the slice's share of each retraining window's impressions (its rows are the uniformly placed ones), and with
  ``--work-dir`` (the run's, each part's) the position signal the slice's rows and the rest's carry (``window_rows``).

net = cost + benefit (the run's day 0 under GSP is the control's). Means over seeds with Student t 95 % intervals
(``clients/auction/report.py``).

    PYTHONPATH=. python reports/auction_explore.py --control reports/auction_esmm_epochs_control.json \
        --variant reports/auction_explore.json [--work-dir RUN_WORK_DIR ...] \
        --out reports/auction_explore_against_control.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from cli.reports import write_report
from clients.auction.explore import EXPLORING, slice_rows
from clients.auction.merge import read_part
from clients.auction.report import ci95
from reports.auction_esmm_epochs import SAME_SETTINGS, difference, difference_text, paired, seed_days

OUTCOMES = ("welfare", "revenue", "clicks", "conversions", "impressions")
PER_SLOT = {  # figure -> (the control's day key, the run's day key): both under GSP on every request
    "slot_ratios": ("slot_ratios", "slot_ratios"),
    "slot_pctr_over_true_by_slot": ("slot_pctr_over_true_by_slot", "gsp_slot_pctr_over_true_by_slot"),
    "pctr_over_true_by_slot": ("pctr_over_true_by_slot", "gsp_pctr_over_true_by_slot"),
}


def split(control: dict[str, Any], variant: dict[str, Any], pipeline: str) -> dict[str, Any]:
    """The pipeline's cost, benefit and calibration per seed (module docstring), over the days both runs ran
    without a failed scoring call."""
    before, after = seed_days(control, pipeline), seed_days(variant, pipeline)
    seeds = sorted(before.keys() & after.keys())
    per_seed: dict[str, list[float]] = {}
    slots: dict[str, dict[str, list[list[float]]]] = {key: {"control": [], "variant": []} for key in PER_SLOT}
    day0_identical = 0
    for seed in seeds:
        days = range(min(len(before[seed]), len(after[seed])))
        kept = [d for d in days if not (before[seed][d]["errors"] or after[seed][d]["errors"])]
        c, v = before[seed], after[seed]
        day0_identical += 0 in kept and all(v[0][f"gsp_{key}"] == c[0][key] for key in OUTCOMES)
        later = [d for d in kept if d > 0]
        for key in OUTCOMES:
            per_seed.setdefault(f"cost_{key}", []).append(sum(v[d][key] - v[d][f"gsp_{key}"] for d in kept))
            per_seed.setdefault(f"benefit_{key}", []).append(sum(v[d][f"gsp_{key}"] - c[d][key] for d in later))
            per_seed.setdefault(f"slice_{key}", []).append(sum(v[d][f"slice_{key}"] for d in kept))
        per_seed.setdefault("slice_requests", []).append(sum(v[d]["slice_requests"] for d in kept))
        for figure, (control_key, variant_key) in PER_SLOT.items():
            if all(c[d][control_key] is not None and v[d][variant_key] is not None for d in later):
                slots[figure]["control"].append(np.mean([c[d][control_key] for d in later], axis=0).tolist())
                slots[figure]["variant"].append(np.mean([v[d][variant_key] for d in later], axis=0).tolist())
    entry: dict[str, Any] = {"seeds": seeds, "day0_identical": int(day0_identical)}
    entry |= {key: {"mean": float(np.mean(values)), "ci95": ci95(values), "per_seed": values}
              for key, values in per_seed.items()}  # fmt: skip
    entry["per_slot_days_1_on"] = {
        figure: per_slot_differences(sides)
        for figure, sides in slots.items()
        if sides["control"]  # a pipeline without slot ratios (naive, constant) has no slot calibration
    }
    entry["window_slice_share"] = window_shares(after)
    return entry


def per_slot_differences(sides: dict[str, list[list[float]]]) -> dict[str, Any]:
    """Of a per-slot figure's per-seed values in each run (``sides``: "control" and "variant", a list per seed):
    each run's mean per slot over the seeds, and run − control per slot over the seeds with its 95 % interval."""
    gap = np.subtract(sides["variant"], sides["control"])
    return {
        "control": np.mean(sides["control"], axis=0).tolist(),
        "variant": np.mean(sides["variant"], axis=0).tolist(),
        "variant_minus_control": [difference(list(gap[:, k])) for k in range(gap.shape[1])],
    }


def window_shares(days_by_seed: dict[int, list[dict[str, Any]]]) -> list[float]:
    """Per retraining after day d (d = 0..days-2), the share of its window's impressions shown in the slice, means
    over seeds: the window is days d-1 and d, a history day of the world's feedback policy (no slice) before day 0;
    its impressions are taken as day 0's where the history's are not in the report (the same requests a day)."""
    shares = []
    for d in range(min(len(days) for days in days_by_seed.values()) - 1):
        per_seed = []
        for days in days_by_seed.values():
            earlier = days[d - 1] if d > 0 else None
            explored = days[d]["slice_impressions"] + (earlier["slice_impressions"] if earlier else 0)
            shown = days[d]["impressions"] + (earlier["impressions"] if earlier else days[0]["impressions"])
            per_seed.append(explored / shown)
        shares.append(float(np.mean(per_seed)))
    return shares


def window_rows(work_dirs: list[Path], variant: dict[str, Any]) -> dict[str, Any]:
    """Per exploring pipeline, the rows its retrainings read from the run's days (days 0 to the one before last, in
    the run's ``--work-dir`` logs), split into the slice's and the rest's: impressions per slot, and per slot over
    slot 1 the logged click rate and the shown ads' mean true top-slot CTR (the ads' own part of the fall): the
    position signal each kind of row carries, against theta."""
    config = variant["config"]
    out: dict[str, Any] = {}
    for name in (n for n in config["pipelines"] if n in EXPLORING):
        sums = {part: np.zeros((3, config["slots"])) for part in ("slice", "rest")}  # impressions, clicks, true CTR
        for work_dir in work_dirs:
            for seed_dir in sorted(work_dir.glob("seed*")):
                seed = int(seed_dir.name.removeprefix("seed"))
                for day in range(config["days"] - 1):
                    log = pq.read_table(seed_dir / name / "logs" / f"day{day}.parquet")
                    request = np.array([int(i.split("-r")[1]) for i in log.column("request_id").to_pylist()])
                    explored = slice_rows(config["explore"], seed, seed, day, config["requests_per_day"])[request]
                    slot = log.column("position").to_numpy() - 1
                    for part, rows in (("slice", explored), ("rest", ~explored)):
                        for row, values in enumerate((np.ones(len(slot)), log.column("click").to_numpy(),
                                                      log.column("true_ctr").to_numpy())):  # fmt: skip
                            np.add.at(sums[part][row], slot[rows], values[rows].astype(np.float64))
        out[name] = {
            part: {
                "impressions_by_slot": shown.tolist(),
                "logged_ctr_over_slot1": (clicks / shown / (clicks[0] / shown[0])).tolist(),
                "true_ctr_over_slot1": (true / shown / (true[0] / shown[0])).tolist(),
            }
            for part, (shown, clicks, true) in sums.items()
        }
    return out


def compare(control: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    differing = [key for key in SAME_SETTINGS if control["config"][key] != variant["config"][key]]
    if differing:
        raise SystemExit(f"the two runs differ in {differing}: not the same seeds, days and requests")
    if not variant["config"].get("explore"):
        raise SystemExit("--variant is a run without an exploration slice (its config has no explore)")
    names = [name for name in control["pipelines"] if name in variant["pipelines"]]
    return {
        "settings": {key: control["config"][key] for key in SAME_SETTINGS} | {"explore": variant["config"]["explore"]},
        "net": {name: paired(control, variant, name) for name in names},
        "split": {name: split(control, variant, name) for name in names if name in EXPLORING},
    }


def table(report: dict[str, Any]) -> str:
    lines = [f"exploration slice {report['settings']['explore']:.0%}: run − control per seed [95% interval]"]
    for name, entry in report["net"].items():
        lines.append(f"{name}: {entry['identical_days']} identical days (all outcomes)")
        for key in ("welfare", "revenue", "clicks", "conversions"):
            lines.append(f"  net {key:18s} {difference_text(entry[key])}")
        parts = report["split"].get(name)
        if parts is None:
            continue
        lines.append(f"  day 0 under GSP alike to the control's on {parts['day0_identical']} of the seeds")
        for part in ("cost", "benefit", "slice"):
            for key in ("welfare", "revenue", "clicks", "conversions"):
                figures = parts[f"{part}_{key}"]
                bounds = figures["ci95"] or [figures["mean"]] * 2
                lines.append(f"  {part:7s} {key:12s} {figures['mean']:+10.1f} [{bounds[0]:+.1f}, {bounds[1]:+.1f}]")
        for figure, sides in parts["per_slot_days_1_on"].items():
            control = ", ".join(f"{x:.2f}" for x in sides["control"])
            variant = ", ".join(f"{x:.2f}" for x in sides["variant"])
            lines.append(f"  {figure}, days 1 on: control {control}; run {variant}")
        shares = ", ".join(f"{s:.3f}" for s in parts["window_slice_share"])
        lines.append(f"  the slice's share of each retraining window's impressions: {shares}")
        for part, rows in report.get("window_rows", {}).get(name, {}).items():
            figures = "; ".join(f"{key} " + ", ".join(f"{x:.3g}" for x in values) for key, values in rows.items())
            lines.append(f"  {part} rows of the windows: {figures}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--control", type=Path, required=True, help="the run without a slice")
    parser.add_argument("--variant", type=Path, required=True, help="the run with --explore SHARE")
    parser.add_argument("--out", type=Path, default=Path("reports/auction_explore_against_control.json"))
    parser.add_argument("--work-dir", type=Path, nargs="*", default=[], help="the run's --work-dir (each part's)")
    args = parser.parse_args(argv)
    variant = read_part(args.variant)
    report = compare(read_part(args.control), variant)
    if args.work_dir:
        report["window_rows"] = window_rows(args.work_dir, variant)
    report["command"] = " ".join(["python reports/auction_explore.py", *sys.argv[1:]])
    sys.stdout.write(table(report) + "\n")
    write_report(args.out, report)


if __name__ == "__main__":
    main()
