"""Do the trained pipelines beat the untrained baseline in the auction itself? The ``constant`` pipeline (every
candidate of a day scored by the click and conversions-per-click rates of its own last days of logs) of one
``ctr auction`` run against the ``naive`` and ``debiased`` pipelines of another run of the same seeds, days and
requests (``--pipelines constant,oracle`` costs seconds; the service pipelines' run, minutes).

The two runs' ``oracle`` days must be equal, to the cent: that is the check that they drew the same worlds, traffic
and outcomes, which pairing a pipeline of one with a pipeline of the other needs. Each service pipeline's totals
minus the constant's, paired per seed, mean and Student t 95% interval over the seeds
(``reports/auction_esmm_epochs.py``'s ``paired``).

With ``--work-dir`` (the constant run's), each day's conversions-per-click rate is set beside the true CVR of the
impressions the constant pipeline showed that day, their plain mean and their mean weighted by the probability of a
click (true CTR x examination, which its logs carry): which of the two its rate estimates.

    PYTHONPATH=. python reports/auction_constant_floor.py --services reports/auction_esmm_epochs_control.json \
        --constant CONSTANT.json [--work-dir artifacts/auction] [--out reports/auction_constant_floor.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from cli.reports import write_report
from clients.auction.merge import read_part
from reports.auction_esmm_epochs import SAME_SETTINGS, difference_text, paired

SERVICE_PIPELINES = ("naive", "debiased")
CONSTANT_OF = "constant"  # the pipeline of the ``--constant`` run paired with each service pipeline
SHOWN = ("welfare", "revenue", "advertiser_surplus", "conversions", "clicks", "regret")


def compare(services: dict[str, Any], constant: dict[str, Any]) -> dict[str, Any]:
    """Each service pipeline minus the constant one, after the check that the runs share their oracle days."""
    differing = [key for key in SAME_SETTINGS if services["config"][key] != constant["config"][key]]
    if differing:
        raise SystemExit(f"the two runs differ in {differing}: not the same seeds, days and requests")
    oracle = paired(services, constant, "oracle")
    if oracle["identical_days"] != sum(len(days) for days in oracle["days"].values()):
        raise SystemExit("the two runs' oracle days differ: not the same worlds, traffic and outcomes")
    pipelines = {name: paired(constant, services, CONSTANT_OF, name) for name in SERVICE_PIPELINES}
    return {"settings": {key: services["config"][key] for key in SAME_SETTINGS}, "oracle_days_equal": True} | {
        f"{name}_minus_constant": entry for name, entry in pipelines.items()
    }


def rate_against_truth(constant: dict[str, Any], work_dir: Path) -> list[dict[str, Any]]:
    """Per seed and day of the constant pipeline: its pCVR against the true CVR of the impressions it showed."""
    rows = []
    for run in constant["pipelines"][CONSTANT_OF]["seeds"]:
        for day, record in enumerate(run["days"]):
            log = pq.read_table(work_dir / f"seed{run['seed']}" / CONSTANT_OF / "logs" / f"day{day}.parquet")
            true_cvr = log.column("true_cvr").to_numpy().astype(np.float64)
            clicked = (log.column("true_ctr").to_numpy() * log.column("examination").to_numpy()).astype(np.float64)
            rate = record["constant_rates"]["cvr"]
            rows.append(
                {
                    "seed": run["seed"],
                    "day": day,
                    "pcvr": rate,
                    "over_mean_true_cvr": rate / float(true_cvr.mean()),
                    "over_click_weighted_true_cvr": rate / float(np.average(true_cvr, weights=clicked)),
                }
            )
    return rows


def table(report: dict[str, Any]) -> str:
    """The paired differences as lines for the terminal."""
    lines = []
    for name in SERVICE_PIPELINES:
        entry = report[f"{name}_minus_constant"]
        lines.append(f"{name} - constant (seeds {entry['seeds']}):")
        for key in (*SHOWN, "pcvr_over_true", "slot1_pctr_over_true"):
            figures = entry[key]
            lines.append(
                f"  {key:22s} constant {figures['control']:10.3f}  {name} {figures['variant']:10.3f}  "
                f"{difference_text(figures)}"
            )
    for row in report.get("rate_against_truth", []):
        lines.append(
            f"seed {row['seed']} day {row['day']}: pCVR {row['pcvr']:.4f} = {row['over_mean_true_cvr']:.2f} x the "
            f"shown impressions' mean true CVR, {row['over_click_weighted_true_cvr']:.2f} x their click-weighted one"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=Path, required=True, help="a run with the naive and debiased pipelines")
    parser.add_argument("--constant", type=Path, required=True, help="a run with the constant and oracle pipelines")
    parser.add_argument("--work-dir", type=Path, help="the constant run's, for its rates against the truth")
    parser.add_argument("--out", type=Path, default=Path("reports/auction_constant_floor.json"))
    args = parser.parse_args(argv)
    constant = read_part(args.constant)
    report = compare(read_part(args.services), constant)
    if args.work_dir is not None:
        report["rate_against_truth"] = rate_against_truth(constant, args.work_dir)
    report["command"] = " ".join(["PYTHONPATH=. python reports/auction_constant_floor.py", *sys.argv[1:]])
    sys.stdout.write(table(report) + "\n")
    write_report(args.out, report)


if __name__ == "__main__":
    main()
