"""Do the trained pipelines beat the untrained baselines in the auction itself? The base-rate pipelines of one
``ctr auction`` run (the floor run: ``constant``, every candidate of a day scored by the click and conversions-per-click
rates of its own last days of logs, ranked by GSP; ``random``, the same rates, its eligible candidates in a uniformly
random order), each against the ``naive`` and ``debiased`` pipelines of another run of the same seeds, days and
requests (``--pipelines constant,oracle`` or ``random,constant,oracle`` costs seconds; the service pipelines' run,
minutes). The floor run's own comparisons (``constant_minus_random``, ``random_minus_oracle``, ...) are its report's.

The two runs' ``oracle`` days must be equal, to the cent: that is the check that they drew the same worlds, traffic
and outcomes, which pairing a pipeline of one with a pipeline of the other needs. Each service pipeline's totals
minus each base-rate pipeline's, paired per seed, mean and Student t 95% interval over the seeds
(``reports/auction_esmm_epochs.py``'s ``paired``).

With ``--work-dir`` (the floor run's), from the logs, which carry every candidate's truth:
- ``rate_against_truth`` (the constant pipeline's): each day's conversions-per-click rate beside the true CVR of the
  impressions it showed that day, their plain mean and their mean weighted by the probability of a click (true CTR x
  examination): which of the two its rate estimates;
- ``slot_one_selection``, every pipeline of the floor run: the true CTR of its slot-1 ads minus its eligible
  candidates' mean (clients/auction/selection.py): 0 within the noise for a uniform order, not for GSP;
- ``order_agreement``, each base-rate pipeline: per request whose candidates are all eligible, whether the bid order
  (a constant pCTR's eCPM order, GSP's) and the true value order (true value per click x true CTR, the oracle's) put
  the same candidate first, and their rank correlation, and the bid's with the true CTR.

    PYTHONPATH=. python reports/auction_constant_floor.py --services reports/auction_esmm_epochs_control.json \
        --floor FLOOR.json [--work-dir artifacts/auction] [--out reports/auction_constant_floor.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cli.reports import write_report
from clients.auction.merge import read_part
from clients.auction.pipelines import BASE_RATE_PIPELINES, CONSTANT, SERVICE_PIPELINES
from clients.auction.run import AuctionConfig
from clients.auction.selection import eligible_not_displayed, slot_one_selection
from reports.auction_esmm_epochs import SAME_SETTINGS, difference_text, paired

SHOWN = ("welfare", "revenue", "advertiser_surplus", "conversions", "clicks", "regret")


def floors(floor: dict[str, Any]) -> list[str]:
    """The base-rate pipelines the floor run ran, in their order there."""
    found = [name for name in floor["pipelines"] if name in BASE_RATE_PIPELINES]
    if not found:
        raise SystemExit(f"the floor run has no base-rate pipeline ({', '.join(BASE_RATE_PIPELINES)})")
    return found


def compare(services: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """Each service pipeline minus each base-rate one, after the check that the runs share their oracle days."""
    differing = [key for key in SAME_SETTINGS if services["config"][key] != floor["config"][key]]
    if differing:
        raise SystemExit(f"the two runs differ in {differing}: not the same seeds, days and requests")
    oracle = paired(services, floor, "oracle")
    if oracle["identical_days"] != sum(len(days) for days in oracle["days"].values()):
        raise SystemExit("the two runs' oracle days differ: not the same worlds, traffic and outcomes")
    pairs = {
        f"{name}_minus_{base}": paired(floor, services, base, name)
        for base in floors(floor)
        for name in SERVICE_PIPELINES
    }
    return {"settings": {key: services["config"][key] for key in SAME_SETTINGS}, "oracle_days_equal": True} | pairs


def logs_folder(work_dir: Path, seed: int, pipeline: str) -> Path:
    """Where a pipeline of a seed wrote its days' logs in a run's ``work_dir`` (clients/auction/run.py)."""
    return work_dir / f"seed{seed}" / pipeline / "logs"


def day_logs(work_dir: Path, seed: int, pipeline: str, day: int) -> tuple[pa.Table, pa.Table]:
    """The (displayed, non-displayed) logs of a pipeline's day in the floor run's ``work_dir``."""
    logs = logs_folder(work_dir, seed, pipeline)
    return pq.read_table(logs / f"day{day}.parquet"), pq.read_table(logs / f"day{day}_non_displayed.parquet")


def selections(floor: dict[str, Any], work_dir: Path) -> dict[str, dict[str, Any]]:
    """Per pipeline of the floor run, over all its seeds and days: its slot 1's true CTR against its eligible
    candidates' mean (request ids are unique within a seed only: one selection per seed, pooled by request)."""
    reserve = floor["config"]["reserve"]
    out = {}
    for name, entry in floor["pipelines"].items():
        per_seed = [
            slot_one_selection([day_logs(work_dir, run["seed"], name, d) for d in range(len(run["days"]))], reserve)
            for run in entry["seeds"]
        ]
        n = sum(s.requests for s in per_seed)
        difference = sum(s.difference * s.requests for s in per_seed) / n
        variance = sum((s.standard_error * s.requests) ** 2 for s in per_seed) / n**2
        out[name] = {
            "requests": n,
            "slot1_true_ctr": sum(s.slot1_true_ctr * s.requests for s in per_seed) / n,
            "eligible_true_ctr": sum(s.eligible_true_ctr * s.requests for s in per_seed) / n,
            "difference": difference,
            "standard_error": variance**0.5,
            "z": difference / variance**0.5,
            "per_seed": [s.record() for s in per_seed],
        }
    return out


def order_agreement(floor: dict[str, Any], work_dir: Path, pipeline: str) -> dict[str, Any]:
    """The base-rate ``pipeline``'s logged bids against the truth, per request whose candidates are all eligible: does
    the highest bid (its constant pCTR's eCPM order) hold the highest true value per impression (the oracle's order);
    the rank correlation (Spearman) of bid and true value, and of bid and true CTR, averaged over the requests."""
    config = floor["config"]
    auction = AuctionConfig(**{key: config[key] for key in ("slots", "candidates", "ocpa_share")})
    top, bid_value, bid_ctr, requests = [], [], [], 0
    for run in floor["pipelines"][pipeline]["seeds"]:
        world = auction.world(run["seed"])
        advertisers = auction.advertisers(world, run["seed"])
        for day in range(len(run["days"])):
            columns = _by_request(*day_logs(work_dir, run["seed"], pipeline, day), config)
            requests += len(columns["bid"])
            keep = columns["eligible"].all(axis=1)
            ads, bid, ctr = columns["ad_idx"][keep], columns["bid"][keep], columns["true_ctr"][keep]
            value = advertisers.value_per_click(ads, columns["true_cvr"][keep]) * ctr
            top.append(bid.argmax(axis=1) == value.argmax(axis=1))
            bid_value.append(_spearman(bid, value))
            bid_ctr.append(_spearman(bid, ctr))
    agree, rho_value, rho_ctr = (np.concatenate(x) for x in (top, bid_value, bid_ctr))
    return {
        "requests": requests,
        "all_eligible": len(agree),
        "top_agrees": float(agree.mean()),
        "top_agrees_by_chance": 1 / config["candidates"],
        "spearman_bid_value": float(rho_value.mean()),
        "spearman_bid_true_ctr": float(rho_ctr.mean()),
    }


def _by_request(displayed: pa.Table, non_displayed: pa.Table, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """A day's candidates as (R, K) arrays, a request per row: the displayed and the non-displayed rows together."""
    kept = eligible_not_displayed(non_displayed, config["reserve"])
    ids = [t.column("request_id").to_numpy(zero_copy_only=False) for t in (displayed, non_displayed)]
    order = np.argsort(np.concatenate(ids), kind="stable")
    out = {"eligible": np.concatenate([np.ones(displayed.num_rows, dtype=bool), kept])[order]}
    for key in ("ad_idx", "bid", "true_ctr", "true_cvr"):
        values = np.concatenate([t.column(key).to_numpy() for t in (displayed, non_displayed)])
        out[key] = values[order].astype(np.int64 if key == "ad_idx" else np.float64)
    return {key: values.reshape(-1, config["candidates"]) for key, values in out.items()}


def _spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(R,) rank correlation of the rows of ``a`` and ``b`` (R, K), without ties: 1 - 6 sum d^2 / (K (K^2 - 1))."""
    k = a.shape[1]
    d = np.argsort(np.argsort(a, axis=1), axis=1) - np.argsort(np.argsort(b, axis=1), axis=1)
    return 1 - 6 * (d**2).sum(axis=1) / (k * (k**2 - 1))


def rate_against_truth(constant: dict[str, Any], work_dir: Path) -> list[dict[str, Any]]:
    """Per seed and day of the constant pipeline: its pCVR against the true CVR of the impressions it showed."""
    rows = []
    for run in constant["pipelines"][CONSTANT]["seeds"]:
        for day, record in enumerate(run["days"]):
            log = pq.read_table(logs_folder(work_dir, run["seed"], CONSTANT) / f"day{day}.parquet")
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
    """The paired differences and the logs' checks as lines for the terminal."""
    lines = []
    for pair in (key for key in report if "_minus_" in key):
        entry, (name, base) = report[pair], pair.split("_minus_")
        lines.append(f"{name} - {base} (seeds {entry['seeds']}):")
        for key in (*SHOWN, "pcvr_over_true", "slot1_pctr_over_true"):
            figures = entry[key]
            lines.append(
                f"  {key:22s} {base} {figures['control']:10.3f}  {name} {figures['variant']:10.3f}  "
                f"{difference_text(figures)}"
            )
    for name, row in report.get("slot_one_selection", {}).items():
        lines.append(
            f"{name}: slot 1's true CTR {row['slot1_true_ctr']:.4f} against its eligible candidates' "
            f"{row['eligible_true_ctr']:.4f}: {row['difference']:+.4f} ± {row['standard_error']:.4f} "
            f"(z {row['z']:+.1f}, {row['requests']:,} requests)"
        )
    for name, row in report.get("order_agreement", {}).items():
        lines.append(
            f"{name}'s bids: the highest is the highest true value in {row['top_agrees']:.1%} of "
            f"{row['all_eligible']:,} requests (chance {row['top_agrees_by_chance']:.0%}); rank correlation with the "
            "true value "
            f"{row['spearman_bid_value']:+.3f}, with the true CTR {row['spearman_bid_true_ctr']:+.3f}"
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
    parser.add_argument(
        "--floor", "--constant", type=Path, required=True, help="a run with base-rate pipelines (constant, random) and"
        " the oracle (--constant: its first name)"
    )  # fmt: skip
    parser.add_argument("--work-dir", type=Path, help="the floor run's, for its logs' checks against the truth")
    parser.add_argument("--out", type=Path, default=Path("reports/auction_constant_floor.json"))
    args = parser.parse_args(argv)
    floor = read_part(args.floor)
    report = compare(read_part(args.services), floor)
    if args.work_dir is not None:
        if CONSTANT in floor["pipelines"]:
            report["rate_against_truth"] = rate_against_truth(floor, args.work_dir)
        report["slot_one_selection"] = selections(floor, args.work_dir)
        report["order_agreement"] = {name: order_agreement(floor, args.work_dir, name) for name in floors(floor)}
    report["command"] = " ".join(["PYTHONPATH=. python reports/auction_constant_floor.py", *sys.argv[1:]])
    sys.stdout.write(table(report) + "\n")
    write_report(args.out, report)


if __name__ == "__main__":
    main()
