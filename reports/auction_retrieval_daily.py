"""The ESAM retriever retrained on a pipeline's own days (``ctr auction --retrieval esam --retrain-retrieval``) against
the one trained on the history window and served every day (``--retrieval esam``), the same seeds, days, requests
and pools: does retraining the retriever on its own selections help or hurt?

Totals are paired per seed as ``reports/auction_retrieval.py`` pairs them (``against``: welfare, clicks, conversions,
the retrieval figures' means, ...). Day by day, each retrieval figure (``RETRIEVAL_FIGURES``) and the day's
welfare, expected welfare, clicks and conversions are paired per seed too (variant − control, mean and Student t
95% interval over the seeds): day 0 is the same retrieval in both runs (a check: a difference of 0), each later day
the variant's retriever has been retrained once more on its own logs. Beside them, what the variant's serving
version trained on (``retrieval_window_rows`` and ``retrieval_window_ads``, the distinct ads of its window: day 0's
is the history window the control's model trained on for every day); with ``--control-work-dir`` (the control
run's ``--work-dir``, its logs), the same of the control's own logs over the same days (the window a retraining of
the fixed retriever would have had: what the fixed model retrieved); with ``--untrained``, the untrained ESAM's day
means (a run of the same seeds whose model did not learn: the floor a retriever can fall to); ``--untrained-pipeline``
names that run's pipeline whose days are read, by default the compared one (a fixed retriever's figures are the
pools' and the model's, the same for every pipeline of its run: an untrained run of the oracle alone is the debiased
pipeline's retrieval floor too, its outcomes the oracle's); with
``--variant-work-dir`` (the variant run's ``--work-dir``), for each day whose version trained on the pipeline's own
logs alone (day ``train_days`` on), the share of the day's retrieved candidates that are ads of that version's
window, against the same share of the day's pools: below it, the version ranks the ads it trained on below those it
never saw.

    PYTHONPATH=. python reports/auction_retrieval_daily.py --control FIXED.json --variant DAILY.json \\
        [--pipeline oracle] [--control-work-dir DIR] [--variant-work-dir DIR] [--untrained UNTRAINED.json] \\
        [--untrained-pipeline PIPELINE] [--out reports/auction_retrieval_daily.json]
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
from clients.auction.retrieval import RETRIEVAL_FIGURES, history_logs
from clients.auction.retrieval_daily import LATEST, day_logs, window_days, window_record
from clients.auction.run import AuctionConfig
from clients.auction.traffic import draw_day
from reports.auction_esmm_epochs import difference, difference_text, seed_days
from reports.auction_retrieval import against
from reports.auction_retrieval import table as against_table

DAY_OUTCOMES = ("welfare", "expected_welfare", "clicks", "conversions")
WINDOW = ("retrieval_window_rows", "retrieval_window_ads")


def by_day(control: dict[str, Any], variant: dict[str, Any], pipeline: str) -> list[dict[str, Any]]:
    """Per day, each figure's control and variant means over the seeds both ran and its paired difference, and the
    variant's training window."""
    before, after = seed_days(control, pipeline), seed_days(variant, pipeline)
    seeds = sorted(before.keys() & after.keys())
    days = min(len(before[s]) for s in seeds), min(len(after[s]) for s in seeds)
    out = []
    for day in range(min(days)):
        entry: dict[str, Any] = {"day": day, "seeds": seeds}
        for key in (*RETRIEVAL_FIGURES, *DAY_OUTCOMES):
            values = {
                side: [float(ds[s][day][key]) for s in seeds] for side, ds in (("control", before), ("variant", after))
            }
            entry[key] = {side: float(np.mean(v)) for side, v in values.items()} | difference(
                list(np.subtract(values["variant"], values["control"]))
            )
        for key in WINDOW:
            entry[key] = float(np.mean([after[s][day][key] for s in seeds]))
        entry["retrieval_versions"] = [after[s][day]["retrieval_versions"] for s in seeds]
        out.append(entry)
    return out


def control_windows(work_dir: Path, pipeline: str, seeds: list[int], days: int, train_days: int) -> list[dict]:
    """Per day from 1, the rows and distinct ads of the control's logs of the ``train_days`` days before it (its
    own days only: from day ``train_days`` on, the window a retraining would have had), means over ``seeds``."""
    out = []
    for day in range(train_days, days):
        records = [
            window_record(
                [day_logs(work_dir / f"seed{s}" / pipeline / "logs", d) for d in range(day - train_days, day)]
            )
            for s in seeds
        ]
        out.append({"day": day} | {k: float(np.mean([r[k] for r in records])) for k in WINDOW})
    return out


def files_ads(window: list[tuple[Path, Path]]) -> np.ndarray:
    """The distinct ads of a window's log files (displayed and not)."""
    return np.unique(np.concatenate([_ads(f) for day in window for f in day]))


def version_window(work_dir: Path, config: dict[str, Any], pipeline: str, seed: int, day: int) -> list:
    """The log files the version serving ``day`` of a ``--retrain-retrieval`` run trained on (``window_days``, as the
    run's ``--retrieval-window`` says: a report without the key ran the latest window)."""
    seed_dir, train_days = work_dir / f"seed{seed}", config["train_days"]
    history = history_logs(seed_dir / "history", seed_dir / "retrieval", train_days)
    window = config.get("retrieval_window", LATEST)
    return window_days(history, seed_dir / pipeline / "logs", day - 1, train_days, window)


def _ads(file: Path) -> np.ndarray:
    return pq.read_table(file, columns=["ad_idx"]).column("ad_idx").to_numpy()


def seen_shares(work_dir: Path, report: dict[str, Any], pipeline: str) -> list[dict[str, Any]]:
    """Per seed and day from ``train_days`` on: the share of the day's retrieved candidates (its logs' rows) whose ad
    is in the serving version's window (``version_window``: with the latest window, the ``train_days`` days before;
    with ``history-kept``, the history's days too), and the same share of the day's pools."""
    config = report["config"]
    settings = AuctionConfig(
        **{k: config[k] for k in ("days", "requests_per_day", "slots", "candidates", "train_days")}
    )
    out = []
    for run in report["pipelines"][pipeline]["seeds"]:
        seed, world = run["seed"], settings.world(run["seed"])
        for day in range(settings.train_days, len(run["days"])):
            seen = files_ads(version_window(work_dir, config, pipeline, seed, day))
            retrieved = np.concatenate([_ads(f) for f in day_logs(work_dir / f"seed{seed}" / pipeline / "logs", day)])
            pool = draw_day(world, seed, day, settings.requests_per_day, settings.train_days, config["pool"]).ads
            out.append({
                "seed": seed,
                "day": day,
                "window_ads": len(seen),
                "retrieved_seen_share": float(np.isin(retrieved, seen).mean()),
                "pool_seen_share": float(np.isin(pool, seen).mean()),
                "retrieval_top_value_share": run["days"][day]["retrieval_top_value_share"],
            })  # fmt: skip
    return out


def untrained_by_day(untrained: dict[str, Any], pipeline: str, seeds: list[int]) -> list[dict[str, float]]:
    """Per day, the untrained ESAM's retrieval figures and ``pipeline``'s outcomes, means over ``seeds``."""
    if pipeline not in untrained["pipelines"]:
        raise SystemExit(
            f"the --untrained run has no {pipeline} pipeline (it ran {', '.join(untrained['pipelines'])}): "
            "name one with --untrained-pipeline"
        )
    days = seed_days(untrained, pipeline)
    missing = [s for s in seeds if s not in days]
    if missing:
        raise SystemExit(f"the --untrained run has no seed(s) {missing} of the compared runs")
    return [
        {"day": day}
        | {k: float(np.mean([days[s][day][k] for s in seeds])) for k in (*RETRIEVAL_FIGURES, *DAY_OUTCOMES)}
        for day in range(min(len(days[s]) for s in seeds))
    ]


def retrained_window(report: dict[str, Any]) -> str | None:
    """A run's ``--retrieval-window`` where it retrained its retriever (a report without the key: latest), else None."""
    config = report["config"]
    return config.get("retrieval_window", LATEST) if config.get("retrain_retrieval") else None


def compare_daily(
    control: dict[str, Any],
    variant: dict[str, Any],
    pipeline: str,
    untrained: dict[str, Any] | None = None,
    control_work_dir: Path | None = None,
    variant_work_dir: Path | None = None,
    untrained_pipeline: str | None = None,
) -> dict[str, Any]:
    if retrained_window(control) == retrained_window(variant) or retrained_window(variant) is None:
        raise SystemExit(
            "--control is a run without --retrain-retrieval (or with another --retrieval-window), --variant one with it"
        )
    for side, report in (("control", control), ("variant", variant)):
        if report["config"].get("retrieval") != "esam" or pipeline not in report["pipelines"]:
            raise SystemExit(f"the {side} run is no --retrieval esam run of the {pipeline} pipeline")
    report: dict[str, Any] = {
        "pipeline": pipeline,
        "daily_minus_fixed": against(control, variant, pipeline),
        "by_day": by_day(control, variant, pipeline),
    }
    seeds = report["by_day"][0]["seeds"]
    if control_work_dir is not None:
        days, train_days = len(report["by_day"]), control["config"]["train_days"]
        report["control_windows"] = control_windows(control_work_dir, pipeline, seeds, days, train_days)
    if variant_work_dir is not None:
        report["seen_shares"] = seen_shares(variant_work_dir, variant, pipeline)
    if untrained is not None:
        report["untrained_pipeline"] = untrained_pipeline or pipeline
        report["untrained_by_day"] = untrained_by_day(untrained, report["untrained_pipeline"], seeds)
    return report


def table(report: dict[str, Any]) -> str:
    lines = [against_table({"daily_minus_fixed": report["daily_minus_fixed"]}), f"== {report['pipeline']} by day =="]
    for entry in report["by_day"]:
        window = ", ".join(f"{k} {entry[k]:,.0f}" for k in WINDOW)
        lines.append(f"day {entry['day']} (the variant's version trained on: {window})")
        for key in (*RETRIEVAL_FIGURES, *DAY_OUTCOMES):
            f = entry[key]
            lines.append(f"  {key:28s} {f['control']:10.3f} {f['variant']:10.3f} {difference_text(f)}")
    for entry in report.get("control_windows", []):
        lines.append(
            f"control's own window before day {entry['day']}: " + ", ".join(f"{k} {entry[k]:,.0f}" for k in WINDOW)
        )
    for e in report.get("seen_shares", []):
        lines.append(
            f"seed {e['seed']} day {e['day']}: window {e['window_ads']:,} ads; of them {e['retrieved_seen_share']:.3f} "
            f"of the retrieved, {e['pool_seen_share']:.3f} of the pool; top-value share "
            f"{e['retrieval_top_value_share']:.3f}"
        )
    for entry in report.get("untrained_by_day", []):
        figures = ", ".join(f"{k} {entry[k]:.3f}" for k in (*RETRIEVAL_FIGURES, *DAY_OUTCOMES))
        lines.append(f"untrained day {entry['day']} ({report['untrained_pipeline']}): {figures}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--control", type=Path, required=True, help="the --retrieval esam run")
    parser.add_argument("--variant", type=Path, required=True, help="the --retrieval esam --retrain-retrieval run")
    parser.add_argument("--pipeline", default="oracle", help="the pipeline whose days are compared")
    parser.add_argument("--untrained", type=Path, help="the --retrieval esam run of the untrained ESAM")
    parser.add_argument(
        "--untrained-pipeline", help="the --untrained run's pipeline whose days are read (default: --pipeline)"
    )
    parser.add_argument("--control-work-dir", type=Path, help="the control run's --work-dir: its logs' windows")
    parser.add_argument("--variant-work-dir", type=Path, help="the variant run's --work-dir: its windows' ads")
    parser.add_argument("--out", type=Path, default=Path("reports/auction_retrieval_daily.json"))
    args = parser.parse_args(argv)
    untrained = read_part(args.untrained) if args.untrained is not None else None
    control = read_part(args.control)
    report = compare_daily(
        control,
        read_part(args.variant),
        args.pipeline,
        untrained,
        args.control_work_dir,
        args.variant_work_dir,
        args.untrained_pipeline,
    )
    report["command"] = " ".join(["python reports/auction_retrieval_daily.py", *sys.argv[1:]])
    sys.stdout.write(table(report) + "\n")
    write_report(args.out, report)


if __name__ == "__main__":
    main()
