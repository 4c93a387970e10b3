"""Where one epoch takes the explored start: each debiased window of a `ctr auction --explore` run whose `ctr` config
has ``bypass_start = "explored"`` trained again as ``clients/auction/retrain.py`` trains it (reports/
auction_constant_warnings.py's ``window_training``), with each start untrained (as ``fit`` starts it) and after the
served epoch (reports/auction_slot_ratios.py's ``trained``), beside the window's yardsticks over its training rows
(``yardsticks``: θ, the logged fall, the ads' own part of it) and the fall of its explored rows (the explored start's
target, training/models/explored_start.py), and the run's own published ratios of the window's model (the check that
it was rebuilt).

    PYTHONPATH=. nice -n 15 python reports/auction_explored_windows.py --work-dir RUN_PART ... \\
        --out reports/auction_explore_explored_start_windows.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cli.reports import write_report
from reports.auction_constant_warnings import window_training, windows
from reports.auction_slot_ratios import CTR_MODEL, mean_ratios, published, trained, yardsticks
from training.models.explored_start import ExploredSlots

STARTS = ("log", "explored")


def explored_fall(tensors: dict[str, torch.Tensor], slots: int) -> tuple[ExploredSlots, list[float] | None]:
    """The explored training rows' counts at slots 1..``slots``, and their click rates' fall (each slot's over slot 1's:
    the explored start's target), None where they are too few to start from (``ExploredSlots.too_few``)."""
    explored = ExploredSlots.of(tensors, slots)
    if explored.too_few() is not None:
        return explored, None
    rates = explored.rates()
    return explored, (rates / rates[0]).tolist()


def window_record(window: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """One window's yardsticks, explored rows, published ratios and each start's ratios untrained and served."""
    built = window_training(window, scratch, CTR_MODEL)
    rows = len(built.parts["train"])
    marks = yardsticks(built, rows)
    explored, fall = explored_fall(built.parts["train"].tensors, len(marks["theta"]))
    states = {}
    for start in STARTS:
        states[f"{start}, untrained"] = trained(built, {"bypass_start": start}, 0)["ratios"]
        states[f"{start}, epochs = 1"] = trained(built, {"bypass_start": start}, 1)["ratios"]
    return {key: window[key] for key in ("seed", "window")} | {
        "yardsticks": marks,
        "explored_clicks_by_slot": explored.clicks_by_slot,
        "explored_fall": fall,
        "published": published(window),
        "states": states,
    }


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Over the windows whose explored rows were enough (the explored start used), the means of each figure."""
    used = [r for r in records if r["explored_fall"] is not None]
    if not used:
        return {"windows": len(records), "explored_windows": 0}
    out: dict[str, Any] = {"windows": len(records), "explored_windows": len(used)}
    out["explored_fall"] = mean_ratios(used, lambda r: r["explored_fall"])
    for key in ("theta", "logged", "quality"):
        out[key] = mean_ratios(used, lambda r, k=key: r["yardsticks"][k])
    for name in used[0]["states"]:
        out[name] = mean_ratios(used, lambda r, n=name: r["states"][n])
    out["published"] = mean_ratios(used, lambda r: r["published"])
    out["largest_rebuild_gap"] = max(
        float(np.max(np.abs(np.subtract(r["states"]["explored, epochs = 1"], r["published"])))) for r in used
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, nargs="+", required=True, help="the run's --work-dir (each part's)")
    parser.add_argument("--train-days", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("reports/auction_explore_explored_start_windows.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(1)
    records = []
    with tempfile.TemporaryDirectory() as scratch:
        for work_dir in args.work_dir:
            for window in windows(work_dir, args.train_days, ("debiased",)):
                records.append(window_record(window, Path(scratch)))
                sys.stderr.write(f"{json.dumps(records[-1])}\n")
    report = {
        "command": " ".join(["PYTHONPATH=. nice -n 15 python reports/auction_explored_windows.py", *sys.argv[1:]]),
        "summary": summary(records),
        "windows": records,
    }
    sys.stdout.write(json.dumps(report["summary"], indent=1) + "\n")
    write_report(args.out, report)


if __name__ == "__main__":
    main()
