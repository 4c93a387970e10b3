"""Does a pipeline's top slot select its ads by click rate? Read from its logs, which carry every candidate's true
top-slot CTR (the displayed and the non-displayed tables alike).

Per request with an ad in slot 1: the true CTR of that ad minus the mean true CTR of the request's eligible
candidates (``gsp.eligible``: the displayed ones were; a non-displayed one by its logged bid and pCTR). Under a
uniformly random order (the random pipeline) slot 1 holds each eligible candidate with probability 1 / n, so the
difference's expectation is 0: no selection; under GSP an ad is placed by its eCPM, and slot 1 holds the candidates
a pipeline scores high. The mean difference comes with its standard error over the requests (the requests' draws
are independent), so "no selection" is a claim the logs can refute.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from clients.auction.gsp import eligible


@dataclass(frozen=True)
class SlotOneSelection:
    requests: int  # requests with an ad in slot 1
    slot1_true_ctr: float  # mean true top-slot CTR of the slot-1 ads
    eligible_true_ctr: float  # mean over the same requests of their eligible candidates' mean true top-slot CTR
    difference: float  # slot1_true_ctr - eligible_true_ctr
    standard_error: float  # of ``difference``, over the requests

    @property
    def z(self) -> float:
        """The difference in standard errors (|z| > 2: beyond the requests' noise at about 95%)."""
        return self.difference / self.standard_error if self.standard_error > 0 else math.nan

    def record(self) -> dict[str, Any]:
        return asdict(self) | {"z": self.z}


def eligible_not_displayed(non_displayed: pa.Table, reserve: float) -> np.ndarray:
    """(N,) bool: which rows of a day's non-displayed table were eligible (``gsp.eligible``, by their logged bid and
    pCTR); every displayed row was."""
    bid = non_displayed.column("bid").to_numpy().astype(np.float64)
    pctr = non_displayed.column("pctr").to_numpy().astype(np.float64)
    return eligible(bid[None, :], pctr[None, :], reserve)[0]


def slot_one_selection(days: list[tuple[pa.Table, pa.Table]], reserve: float) -> SlotOneSelection:
    """``days``: (displayed, non-displayed) log tables of a pipeline's days (clients/auction/day.py), whose request
    ids are unique across the days (``d{day}-r{request}``); ``reserve``: the run's."""
    ids, true_ctr, slot1 = [], [], []
    for displayed, non_displayed in days:
        kept = eligible_not_displayed(non_displayed, reserve)
        for table, rows in ((displayed, slice(None)), (non_displayed, kept)):
            ids.append(table.column("request_id").to_numpy(zero_copy_only=False)[rows])
            true_ctr.append(table.column("true_ctr").to_numpy().astype(np.float64)[rows])
        slot1.append(displayed.column("position").to_numpy() == 1)
        slot1.append(np.zeros(int(kept.sum()), dtype=bool))
    requests, row = np.unique(np.concatenate(ids), return_inverse=True)
    ctr, first = np.concatenate(true_ctr), np.concatenate(slot1)
    eligible_mean = np.bincount(row, weights=ctr, minlength=len(requests)) / np.bincount(row, minlength=len(requests))
    shown = np.zeros(len(requests), dtype=bool)
    shown[row[first]] = True
    top = np.zeros(len(requests))
    top[row[first]] = ctr[first]
    difference = top[shown] - eligible_mean[shown]
    n = int(shown.sum())
    if n == 0:
        raise ValueError("no request with an ad in slot 1 in these logs")
    spread = float(difference.std(ddof=1)) if n > 1 else math.nan
    return SlotOneSelection(
        requests=n,
        slot1_true_ctr=float(top[shown].mean()),
        eligible_true_ctr=float(eligible_mean[shown].mean()),
        difference=float(difference.mean()),
        standard_error=spread / math.sqrt(n),
    )
