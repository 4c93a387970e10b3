"""Retrieval in the auction: ``ctr auction --retrieval esam`` against the control retrievals of the same seeds, days,
requests and pools (``--retrieval first``: the pool's first K, no model; an ESAM trained at a learning rate of 1e-12,
``--configs`` a copy of ``models/`` with that rate: the same towers untrained), per seed and pipeline.

Each pipeline's totals are paired per seed as ``reports/auction_esmm_epochs.py`` pairs them (variant − control, mean
and Student t 95% interval over the seeds: welfare, revenue, surplus, conversions, clicks, regret, pCVR / true CVR,
the top slot's pCTR / true CTR, and here the expected welfare under the true probabilities too), and so are the
retrieval figures of each run (clients/auction/retrieval.py ``retrieval_figures``: the same for every pipeline of a
seed, but in a run with ``--retrain-retrieval``, reports/auction_retrieval_daily.py): the share of each pool's true
top K by expected value per impression and by true CTR that the retrieved K hold, their mean true CTR and mean
expected value over the pool's.

    PYTHONPATH=. python reports/auction_retrieval.py --control FIRST.json --variant ESAM.json \\
        [--untrained UNTRAINED.json] [--out reports/auction_retrieval.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cli.reports import write_report
from clients.auction.merge import read_part
from clients.auction.retrieval import RETRIEVAL_FIGURES
from reports.auction_esmm_epochs import compare, difference, difference_text, seed_days
from reports.auction_esmm_epochs import table as paired_table


def retrieval_pipeline(report: dict[str, Any], pipeline: str | None = None) -> str:
    """The pipeline whose retrieval figures are the run's: ``pipeline``, or any where they share the traffic (a run
    with ``--retrain-retrieval`` has its figures per pipeline: one must be named where it has several)."""
    if pipeline is not None:
        return pipeline
    names = list(report["pipelines"])
    if report["config"].get("retrain_retrieval") and len(names) > 1:
        raise SystemExit(f"the run retrained a retriever per pipeline ({', '.join(names)}): name the pipeline")
    return names[0]


def retrieval_by_seed(report: dict[str, Any], pipeline: str | None = None) -> dict[int, dict[str, float]]:
    """Seed -> each retrieval figure's mean over the days of ``pipeline`` (``retrieval_pipeline``)."""
    days = seed_days(report, retrieval_pipeline(report, pipeline))
    return {seed: {k: float(np.mean([d[k] for d in ds])) for k in RETRIEVAL_FIGURES} for seed, ds in days.items()}


def _kept(report: dict[str, Any], pipeline: str, entry: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The pipeline's days in ``report`` that ``compare`` paired (``entry``: its per-seed days), seed by seed."""
    days = seed_days(report, pipeline)
    return [[days[seed][d] for d in entry["days"][seed]] for seed in entry["seeds"]]


def against(control: dict[str, Any], variant: dict[str, Any], pipeline: str | None = None) -> dict[str, Any]:
    """The variant's pipelines and retrieval figures (``pipeline``'s: ``retrieval_pipeline``) paired per seed with
    the control's."""
    for side, report in (("control", control), ("variant", variant)):
        if report["config"].get("retrieval") in (None, "pool"):
            raise SystemExit(f"the {side} run did not retrieve (--retrieval esam or first)")
    if control["config"]["pool"] != variant["config"]["pool"]:
        raise SystemExit(f"the runs' pools differ: {control['config']['pool']} and {variant['config']['pool']}")
    out = compare(control, variant)
    for name, entry in out["pipelines"].items():  # the welfare expected under the true probabilities: less noisy
        values = {
            side: [float(np.sum([d["expected_welfare"] for d in days])) for days in _kept(report, name, entry)]
            for side, report in (("control", control), ("variant", variant))
        }
        entry["expected_welfare"] = {side: float(np.mean(v)) for side, v in values.items()} | difference(
            list(np.subtract(values["variant"], values["control"]))
        )
    before, after = retrieval_by_seed(control, pipeline), retrieval_by_seed(variant, pipeline)
    seeds = sorted(before.keys() & after.keys())
    out["retrieval"] = {
        "control": control["config"]["retrieval"],
        "variant": variant["config"]["retrieval"],
        "pool": control["config"]["pool"],
    }
    for key in RETRIEVAL_FIGURES:
        values = {side: [figures[s][key] for s in seeds] for side, figures in (("control", before), ("variant", after))}
        out["retrieval"][key] = {side: float(np.mean(v)) for side, v in values.items()} | difference(
            list(np.subtract(values["variant"], values["control"]))
        )
    return out


def table(report: dict[str, Any]) -> str:
    lines = []
    for name, entry in report.items():
        if not isinstance(entry, dict) or "retrieval" not in entry:
            continue
        retrieval = entry["retrieval"]
        lines.append(f"== {name} (pool {retrieval['pool']}) ==")
        for key in RETRIEVAL_FIGURES:
            f = retrieval[key]
            lines.append(f"  {key:28s} {f['control']:8.3f} {f['variant']:8.3f} {difference_text(f)}")
        lines.append(paired_table(entry))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--control", type=Path, required=True, help="the --retrieval first run")
    parser.add_argument("--variant", type=Path, required=True, help="the --retrieval esam run")
    parser.add_argument("--untrained", type=Path, help="the --retrieval esam run of the untrained ESAM")
    parser.add_argument("--out", type=Path, default=Path("reports/auction_retrieval.json"))
    args = parser.parse_args(argv)
    esam = read_part(args.variant)
    report: dict[str, Any] = {"esam_minus_first": against(read_part(args.control), esam)}
    if args.untrained is not None:
        untrained = read_part(args.untrained)
        report["esam_minus_untrained"] = against(untrained, esam)
        report["untrained_minus_first"] = against(read_part(args.control), untrained)
    report["command"] = " ".join(["python reports/auction_retrieval.py", *sys.argv[1:]])
    sys.stdout.write(table(report) + "\n")
    write_report(args.out, report)


if __name__ == "__main__":
    main()
