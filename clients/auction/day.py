"""One auction day of one pipeline: scores -> bids -> GSP -> the world's clicks and conversions ->
the day's impression logs and metrics (the random pipeline: a uniformly random order of the eligible candidates in
place of GSP, clients/auction/uniform.py).

The world decides every outcome: a click on the ad in slot k when the request's click draw is under
theta_k x its true top-slot CTR, a conversion after a click when the conversion draw is under its
true CVR. Displayed impressions are logged in the impression-log format (DESIGN.md §1) with the bid,
the price per click and a propensity of 1 (the auction's ranking is deterministic given the scores; the random
pipeline's rows carry their probability under its uniform order);
the other candidates go to the non-displayed table, without labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from clients.auction.advertisers import Advertisers
from clients.auction.explore import GSP_SLOT_MEANS, on_rows
from clients.auction.gsp import Allocation, expected_welfare, run_gsp
from clients.auction.pipelines import DayScores
from clients.auction.traffic import DayRequests
from clients.auction.uniform import run_uniform
from training.world import World
from training.world.logs import build_table, candidate_table


@dataclass(frozen=True)
class DayOutcome:
    metrics: dict[str, Any]
    displayed: pa.Table  # impression log of the displayed ads
    non_displayed: pa.Table  # the candidates not shown, without labels


@dataclass(frozen=True)
class SlotRatios:
    """r_k, a pipeline's click probability at slot k over that at slot 1, and where the values come from:
    ``service`` (the ctr model's ``position.ctr_ratios`` published in ``/v1/models``) or ``world`` (the true
    examination theta_k / theta_1: the oracle's). A pipeline with neither gets no slot calibration: the ratio
    of its own logs' CTR at slot k to that at slot 1 mixes the slot's effect with which ads land lower down
    (the oracle read 1, 0.85, 0.41 with it on world seed 0, where theta gives 1, 1, 1), and calibrating
    pCTR x r_k against its own clicks would only repeat slot 1's calibration at every slot."""

    values: list[float]
    source: str

    @classmethod
    def of_world(cls, world: World) -> SlotRatios:
        theta = world.examination()
        return cls(values=(theta / theta[0]).tolist(), source="world")


def run_day(
    world: World,
    advertisers: Advertisers,
    requests: DayRequests,
    scores: DayScores,
    reserve: float,
    slot_ratios: SlotRatios | None = None,
    uniform_order: np.ndarray | None = None,
    uniform_rows: np.ndarray | None = None,
) -> DayOutcome:
    """``slot_ratios``: the pipeline's r_k, which ``slot_pctr_over_true_by_slot`` (pCTR x r_k against
    theta_k x true CTR) needs; without them that figure is None and ``slot_ratio_source`` is "none".
    ``uniform_order``: (R, K) uniform numbers (the random pipeline's): its eligible candidates shown in their order
    at the reserve price, not ranked by eCPM. ``uniform_rows``: (R,) bool, the requests ordered so (an exploration
    slice: clients/auction/explore.py), GSP on the others; None: all of them. With a slice the day records its own
    figures (``slice_*``) and those of the day with GSP on the slice too (``gsp_*``)."""
    n_slots = world.config.n_slots
    theta = world.examination()  # (S,)
    users, hours = requests.user[:, None], requests.hour[:, None]
    true_ctr = world.true_ctr(users, requests.ads, hours)  # (R, K) top-slot truth
    true_cvr = world.true_cvr(users, requests.ads)
    bid = advertisers.bid_per_click(requests.ads, scores.pcvr)
    gsp = run_gsp(bid, scores.pctr, n_slots, reserve)
    if uniform_order is None:
        allocation = gsp
    else:
        allocation = run_uniform(bid, scores.pctr, n_slots, reserve, uniform_order)
        if uniform_rows is not None:
            allocation = on_rows(uniform_rows, allocation, gsp)
    outcome = _realise(advertisers, requests, allocation, theta, true_ctr, true_cvr)
    shown, col, click, conversion = outcome.shown, outcome.col, outcome.click, outcome.conversion
    payment, value = outcome.payment, outcome.value

    def at_slots(values: np.ndarray) -> np.ndarray:
        return np.take_along_axis(values, col, axis=1)  # (R, S)

    true_bid = advertisers.value_per_click(requests.ads, true_cvr)
    truth_value = true_bid * true_ctr  # (R, K) expected top-slot value of each candidate
    oracle = run_gsp(true_bid, true_ctr, n_slots, reserve)
    achieved = expected_welfare(allocation, truth_value, theta)
    best = expected_welfare(oracle, truth_value, theta)

    impressions = shown.sum(axis=0)  # (S,)
    clicks_by_slot = click.sum(axis=0)
    ctr_by_slot = _ratio(clicks_by_slot, impressions)
    ratios = None if slot_ratios is None else np.asarray(slot_ratios.values[:n_slots])
    pctr_over_true, slot_pctr_over_true = _calibration(outcome, scores.pctr, true_ctr, ratios, theta)
    metrics: dict[str, Any] = {
        "day": requests.day,
        "requests": len(requests),
        "impressions": int(impressions.sum()),
        "revenue": float(payment.sum()),
        "welfare": float(value.sum()),
        "advertiser_surplus": float(value.sum() - payment.sum()),
        "clicks": int(click.sum()),
        "conversions": int(conversion.sum()),
        "expected_welfare": float(achieved.sum()),
        "regret": float((best - achieved).sum()),
        "regret_share": float((best - achieved).sum() / best.sum()) if best.sum() > 0 else 0.0,
        "ctr_by_slot": ctr_by_slot.tolist(),
        "pctr_over_true_by_slot": pctr_over_true,
        "slot_pctr_over_true_by_slot": slot_pctr_over_true,
        "slot_ratios": None if ratios is None else ratios.tolist(),
        "slot_ratio_source": "none" if slot_ratios is None else slot_ratios.source,
        "pcvr_over_true": float(at_slots(scores.pcvr)[shown].mean() / at_slots(true_cvr)[shown].mean())
        if shown.any()
        else float("nan"),
        # over the shown slots only: an empty slot's column-0 ad may bid 0 (an oCPA bid at pCVR 0), a 0 / 0 warned of
        "price_over_bid": float((allocation.price[shown] / at_slots(bid)[shown]).mean())
        if shown.any()
        else float("nan"),
        "revenue_by_slot": payment.sum(axis=0).tolist(),
        "welfare_by_slot": value.sum(axis=0).tolist(),
        "ocpa_share_by_slot": _ocpa_share(advertisers, requests.ads, allocation),
        "ocpa_share_oracle_by_slot": _ocpa_share(advertisers, requests.ads, oracle),
    }
    if uniform_rows is not None:  # the slice's own figures, and the day's had GSP run on the slice too
        metrics |= {f"slice_{key}": figure for key, figure in _sums(outcome, uniform_rows).items()}
        had_gsp = _realise(advertisers, requests, gsp, theta, true_ctr, true_cvr)
        metrics |= {f"gsp_{key}": figure for key, figure in _sums(had_gsp).items() if key != "requests"}
        gsp_calibration = _calibration(had_gsp, scores.pctr, true_ctr, ratios, theta)
        metrics |= dict(zip(GSP_SLOT_MEANS, gsp_calibration, strict=True))
    propensity = np.ones(shown.shape) if allocation.propensity is None else allocation.propensity
    displayed = _log_table(
        world, requests, shown, col, click, conversion, outcome.potential, true_ctr, true_cvr, propensity
    )
    displayed = displayed.append_column("bid", pa.array(at_slots(bid)[shown], pa.float32()))
    displayed = displayed.append_column("price", pa.array(allocation.price[shown], pa.float32()))
    return DayOutcome(metrics, displayed, _non_displayed(world, requests, shown, col, bid, scores, true_ctr, true_cvr))


@dataclass(frozen=True)
class _Realised:
    """What the world made of an allocation, (R, S) each: the world's draws decide the clicks and conversions."""

    shown: np.ndarray
    col: np.ndarray  # the candidate column of each slot's ad (0 where empty)
    click: np.ndarray
    conversion: np.ndarray
    potential: np.ndarray  # a conversion had the ad been clicked
    payment: np.ndarray
    value: np.ndarray


def _realise(
    advertisers: Advertisers,
    requests: DayRequests,
    allocation: Allocation,
    theta: np.ndarray,
    true_ctr: np.ndarray,
    true_cvr: np.ndarray,
) -> _Realised:
    shown = allocation.shown
    col = np.where(shown, allocation.winners, 0)

    def at_slots(values: np.ndarray) -> np.ndarray:
        return np.take_along_axis(values, col, axis=1)  # (R, S)

    click = shown & (at_slots(requests.click_draw) < theta * at_slots(true_ctr))
    potential = at_slots(requests.conversion_draw) < at_slots(true_cvr)
    conversion = click & potential
    payment = np.where(click, allocation.price, 0.0)
    value = np.where(shown, advertisers.realised_value(at_slots(requests.ads), click, conversion), 0.0)
    return _Realised(shown, col, click, conversion, potential, payment, value)


def _sums(outcome: _Realised, rows: np.ndarray | None = None) -> dict[str, Any]:
    """The requests' outcomes, those of ``rows`` (R,) bool only where given (explore.OUTCOMES)."""
    pick = np.ones(len(outcome.shown), dtype=bool) if rows is None else rows
    return {
        "requests": int(pick.sum()),
        "impressions": int(outcome.shown[pick].sum()),
        "revenue": float(outcome.payment[pick].sum()),
        "welfare": float(outcome.value[pick].sum()),
        "clicks": int(outcome.click[pick].sum()),
        "conversions": int(outcome.conversion[pick].sum()),
    }


def _calibration(
    outcome: _Realised, pctr: np.ndarray, true_ctr: np.ndarray, ratios: np.ndarray | None, theta: np.ndarray
) -> tuple[list[float], list[float] | None]:
    """Per slot, the shown ads' pCTR over their true top-slot CTR, and pCTR x r_k over theta_k x the truth (None
    without slot ratios)."""
    shown = outcome.shown
    pctr_shown = np.take_along_axis(pctr, outcome.col, axis=1)
    true_shown = np.take_along_axis(true_ctr, outcome.col, axis=1)
    top = _ratio(_sum_shown(pctr_shown, shown), _sum_shown(true_shown, shown)).tolist()
    if ratios is None:
        return top, None
    return top, _ratio(_sum_shown(pctr_shown, shown) * ratios, _sum_shown(true_shown, shown) * theta).tolist()


def _ocpa_share(advertisers: Advertisers, candidates: np.ndarray, allocation: Allocation) -> list[float]:
    """Share of each slot's impressions that went to oCPA advertisers."""
    ads = np.take_along_axis(candidates, np.where(allocation.shown, allocation.winners, 0), axis=1)
    won = (allocation.shown & advertisers.ocpa[ads]).sum(axis=0)
    return _ratio(won, allocation.shown.sum(axis=0)).tolist()


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1e-300), np.nan)


def _sum_shown(values: np.ndarray, shown: np.ndarray) -> np.ndarray:
    return np.where(shown, values, 0.0).sum(axis=0)


def _request_ids(day: int, rows: np.ndarray) -> pa.Array:
    return pa.array([f"d{day}-r{r}" for r in rows.tolist()], pa.string())


def _log_table(
    world: World,
    requests: DayRequests,
    shown: np.ndarray,
    col: np.ndarray,
    click: np.ndarray,
    conversion: np.ndarray,
    potential: np.ndarray,
    true_ctr: np.ndarray,
    true_cvr: np.ndarray,
    propensity: np.ndarray,
) -> pa.Table:
    rows = np.nonzero(shown)[0]  # request of each displayed impression, row-major: slot 1 first
    theta = world.examination()
    columns = {
        "ts": requests.ts[rows],
        "user": requests.user[rows],
        "hour": requests.hour[rows],
        "ad": np.take_along_axis(requests.ads, col, axis=1)[shown],
        "position": np.nonzero(shown)[1] + 1,
        "click": click[shown],
        "conversion": conversion[shown],
        "conversion_potential": potential[shown],
        "true_ctr": np.take_along_axis(true_ctr, col, axis=1)[shown],
        "true_cvr": np.take_along_axis(true_cvr, col, axis=1)[shown],
        "examination": np.broadcast_to(theta, shown.shape)[shown],
        "propensity": propensity[shown],
    }
    return build_table(columns, _request_ids(requests.day, rows), world.population, world.vocab)


def _non_displayed(
    world: World,
    requests: DayRequests,
    shown: np.ndarray,
    col: np.ndarray,
    bid: np.ndarray,
    scores: DayScores,
    true_ctr: np.ndarray,
    true_cvr: np.ndarray,
) -> pa.Table:
    hidden = np.ones(requests.ads.shape, dtype=bool)
    shown_rows, shown_slots = np.nonzero(shown)
    hidden[shown_rows, col[shown_rows, shown_slots]] = False
    rows, cols = np.nonzero(hidden)
    columns = {
        "ts": requests.ts[rows],
        "user": requests.user[rows],
        "hour": requests.hour[rows],
        "ad": requests.ads[rows, cols],
        "true_ctr": true_ctr[rows, cols],
        "true_cvr": true_cvr[rows, cols],
    }
    table = candidate_table(columns, _request_ids(requests.day, rows), world.population, world.vocab)
    table = table.append_column("bid", pa.array(bid[rows, cols], pa.float32()))
    return table.append_column("pctr", pa.array(scores.pctr[rows, cols], pa.float32()))
