"""The exploration slice (``ctr auction --explore SHARE``): on a share of each day's requests the pipelines that
learn from their own logs show their eligible candidates in a uniformly random order, as the ``random`` pipeline
does (clients/auction/uniform.py), and run GSP on the rest.

    rows = slice_rows(share, world_seed, seed, day, n_requests)   # (R,) bool, None where share is 0
    allocation = on_rows(rows, run_uniform(...), run_gsp(...))

**Which requests.** Each request is in the slice with probability ``share``, by uniform numbers of a stream of its
own keyed by (world seed, seed, day) (``EXPLORE_STREAM``, apart from the traffic's 16, the advertisers' 17 and the
uniform order's 18): the same requests for every pipeline of a seed, so the pipelines' days stay paired, and no
other draw moved by exploring. A share of 0 draws nothing: the run is the one without the flag, to the cent.

**Which pipelines.** Those scored from their own logs: the service pipelines (``naive``, ``debiased``), whose models
retrain on them, and ``constant``, whose rates do. Not ``random``, which orders all of its traffic uniformly
already, nor ``oracle``, which scores by the truth and reads no log: it stays the ceiling.

**On a slice request** the pipeline's own scores price the oCPA bids and are logged as its pCTR; its eligible
candidates (as GSP's) are ordered by the random pipeline's draws (``uniform_draws``), each shown ad pays the reserve
per click, and its row is logged with its propensity, 1 / (eligible candidates). The other rows keep GSP's 1.
Retraining reads the whole window as before, the slice's rows among the rest, unweighted.

**What the day records** (clients/auction/day.py): its totals include the slice (its cost is real); ``slice_*``
are the slice's own requests and outcomes (the rest's are the totals minus them), and ``gsp_*`` the day's outcomes
had the same scores run GSP on the slice too: the same requests, draws and models, so ``total - gsp`` is the
slice's cost on its own auctions, and ``gsp`` against a run without the slice is what the slice's logs did for the
models (day 0, before any retraining, alike to the cent).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from clients.auction.gsp import Allocation
from clients.auction.pipelines import CONSTANT, PIPELINES, SERVICE_PIPELINES

EXPLORE_STREAM = 19  # keys the slice's choice apart from traffic (16), advertisers (17) and the uniform order (18)
EXPLORING = (*SERVICE_PIPELINES, CONSTANT)  # the pipelines scored from their own logs
OUTCOMES = ("requests", "impressions", "revenue", "welfare", "clicks", "conversions")
SLICE_SUMS = tuple(f"slice_{key}" for key in OUTCOMES)  # the slice's own requests and their outcomes
GSP_SUMS = tuple(f"gsp_{key}" for key in OUTCOMES if key != "requests")  # the day had GSP run on the slice too
GSP_SLOT_MEANS = ("gsp_pctr_over_true_by_slot", "gsp_slot_pctr_over_true_by_slot")  # its calibration per slot


def check_explore(share: float, pipelines: Sequence[str] = EXPLORING) -> float:
    """``share`` when it is a share of the requests below 1 and one of ``pipelines`` explores, else ValueError
    naming the flag (a slice among pipelines none of which explores ran the run without it, and its table said
    "exploration slice" over nothing)."""
    if not (math.isfinite(share) and 0 <= share < 1):
        raise ValueError(
            f"--explore must be a share of each day's requests, 0 <= SHARE < 1 (0: no exploration slice), got {share}"
        )
    known = set(pipelines) <= set(PIPELINES)  # an unknown name is check_pipelines' to say
    if share > 0 and known and not set(pipelines) & set(EXPLORING):
        raise ValueError(
            f"--explore {share} slices the traffic of the pipelines scored from their own logs ({', '.join(EXPLORING)})"
            f": none of --pipelines {','.join(pipelines)} is one; add one, or drop --explore"
        )
    return share


def slice_rows(share: float, world_seed: int, seed: int, day: int, n_requests: int) -> np.ndarray | None:
    """(R,) bool: the requests of ``day`` of ``seed`` in the exploration slice, each with probability ``share``;
    None where ``share`` is 0 (nothing drawn)."""
    if share == 0:
        return None
    rng = np.random.default_rng(np.random.SeedSequence([world_seed, EXPLORE_STREAM, seed, day]))
    return rng.random(n_requests) < share


def on_rows(rows: np.ndarray, chosen: Allocation, other: Allocation) -> Allocation:
    """``chosen``'s allocation on the requests ``rows`` (R,), ``other``'s on the rest; a deterministic allocation's
    rows (propensity None) carry 1."""

    def propensity(allocation: Allocation) -> np.ndarray:
        return np.ones(allocation.winners.shape) if allocation.propensity is None else allocation.propensity

    pick = rows[:, None]
    return Allocation(
        winners=np.where(pick, chosen.winners, other.winners),
        price=np.where(pick, chosen.price, other.price),
        propensity=np.where(pick, propensity(chosen), propensity(other)),
    )


def explore_lines(report: dict[str, Any]) -> list[str]:
    """The table's lines of a run with a slice: per exploring pipeline, the slice's requests and outcomes, the
    rest's, and what GSP would have made of the slice (means over seeds of the totals)."""
    share = report.get("config", {}).get("explore")
    if not share:
        return []
    exploring = ", ".join(name for name in report["pipelines"] if name in EXPLORING)
    lines = [f"\nexploration slice ({share:.0%} of the requests of {exploring}; rest = total - slice):"]
    for name, entry in report["pipelines"].items():
        total = entry["total"]
        if "slice_requests" not in total:
            continue
        figures = ", ".join(
            f"{key} {total[f'slice_{key}']:,.0f} (GSP {total[f'gsp_{key}'] - total[key] + total[f'slice_{key}']:,.0f}"
            f", rest {total[key] - total[f'slice_{key}']:,.0f})"
            for key in ("welfare", "revenue", "clicks", "conversions")
        )
        lines.append(f"{name}: slice of {total['slice_requests']:,.0f} requests: {figures}")
    return lines
