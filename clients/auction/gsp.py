"""Multi-slot generalised second-price auction (GSP) ranked by eCPM, with a reserve price per click.

    eCPM_i = bid_i x pCTR_i            (expected payment per impression at the top slot)
    eligible: bid_i >= reserve, bid_i > 0, pCTR_i > 0
              (a bid under the reserve cannot pay it; a bid of 0, an oCPA ad whose pCVR is 0, offers nothing)
    slot k goes to the k-th highest eligible eCPM; the winner pays per click
    price_k = max(eCPM_(k+1) / pCTR_k, reserve)      (eCPM_(k+1) = 0 when nobody is ranked below)

pCTR is the top-slot probability (the service's contract). With a separable examination model the
slot factor multiplies every eCPM at a slot alike, so ranking and prices per click need no slot factor;
it matters only when the probability of a click at slot k is wanted (calibration, expected welfare).
The price never exceeds the bid (eCPM_(k+1) <= eCPM_k). What falls (weakly) from slot to slot is the
price per impression at the top slot's click rate, pCTR_k x price_k = max(eCPM_(k+1), pCTR_k x reserve);
the price per click need not (a lower slot's winner with a smaller pCTR can pay more per click).
Everything is vectorised over R requests of K candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Allocation:
    winners: np.ndarray  # (R, S) int: candidate column shown in slot k, -1 where the slot stays empty
    price: np.ndarray  # (R, S) float: price per click of slot k's winner, 0 where empty
    # (R, S) float: P(slot k's winner is shown in slot k) under a randomised allocation (clients/auction/uniform.py);
    # None where the allocation is deterministic given the scores (GSP): 1
    propensity: np.ndarray | None = None

    @property
    def shown(self) -> np.ndarray:
        """(R, S) bool: the slot holds an ad."""
        return self.winners >= 0


def eligible(bid: np.ndarray, pctr: np.ndarray, reserve: float) -> np.ndarray:
    """(R, K) bool: the candidates an allocation may show (module docstring); NaN scores (a failed call) never."""
    with np.errstate(invalid="ignore", over="ignore"):
        return (bid >= reserve) & (bid > 0) & (pctr > 0) & np.isfinite(bid * pctr)


def check_auction(bid: np.ndarray, pctr: np.ndarray, n_slots: int, reserve: float) -> None:
    """ValueError unless ``bid`` and ``pctr`` are both (R, K), ``n_slots`` >= 1 and ``reserve`` >= 0."""
    if bid.shape != pctr.shape or bid.ndim != 2:
        raise ValueError(f"bid and pctr must both be (R, K), got {bid.shape} and {pctr.shape}")
    if n_slots < 1 or reserve < 0:
        raise ValueError(f"need n_slots >= 1 and reserve >= 0, got {n_slots} and {reserve}")


def run_gsp(bid: np.ndarray, pctr: np.ndarray, n_slots: int, reserve: float) -> Allocation:
    """Allocate ``n_slots`` slots over candidates with bids per click ``bid`` (R, K) and top-slot
    click probabilities ``pctr`` (R, K); NaN scores (a failed scoring call) are never shown, nor is an ad that
    bids 0 or is given no chance of a click: under ``reserve`` 0 an oCPA ad whose pCVR was 0 bid 0 and was shown
    at a price of 0, and the day's price over bid became 0/0 (NaN)."""
    check_auction(bid, pctr, n_slots, reserve)
    n_candidates = bid.shape[1]
    ecpm = bid * pctr  # (R, K)
    score = np.where(eligible(bid, pctr, reserve), ecpm, -np.inf)
    width = n_slots + 1  # the winners and the first loser, whose eCPM prices the last slot
    if n_candidates < width:
        score = np.pad(score, ((0, 0), (0, width - n_candidates)), constant_values=-np.inf)
    order = np.argsort(-score, axis=1, kind="stable")[:, :width]  # (R, S+1), ties to the earlier candidate
    ranked = np.take_along_axis(score, order, axis=1)  # (R, S+1)
    shown = np.isfinite(ranked[:, :n_slots])  # (R, S)
    winners = np.where(shown, order[:, :n_slots], -1)
    column = np.where(shown, winners, 0)
    own_pctr = np.take_along_axis(pctr, column, axis=1)
    own_bid = np.take_along_axis(bid, column, axis=1)
    next_ecpm = np.where(np.isfinite(ranked[:, 1:]), ranked[:, 1:], 0.0)  # (R, S)
    with np.errstate(divide="ignore", invalid="ignore"):
        price = np.maximum(next_ecpm / own_pctr, reserve)
    price = np.where(shown, np.minimum(price, own_bid), 0.0)  # rounding only: next eCPM <= own eCPM
    return Allocation(winners=winners, price=price)


def expected_welfare(allocation: Allocation, value_per_impression: np.ndarray, examination: np.ndarray) -> np.ndarray:
    """(R,) expected value of an allocation: sum over slots of theta_k x (value x CTR) of slot k's ad,
    with ``value_per_impression`` (R, K) the top-slot expected value of each candidate."""
    column = np.where(allocation.shown, allocation.winners, 0)
    value = np.take_along_axis(value_per_impression, column, axis=1)  # (R, S)
    return (np.where(allocation.shown, value, 0.0) * examination[None, : column.shape[1]]).sum(axis=1)
