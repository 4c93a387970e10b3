"""GSP pricing as a plain function, property-tested: prices never exceed bids, fall from slot to
slot, respect the reserve, and the allocation by true eCPM maximises expected welfare."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.auction.gsp import Allocation, expected_welfare, run_gsp

money = st.floats(0.0, 50.0, allow_nan=False)
probability = st.floats(1e-4, 1.0, allow_nan=False)


@st.composite
def auctions(draw: st.DrawFn, max_candidates: int = 7) -> tuple[np.ndarray, np.ndarray, int, float]:
    n = draw(st.integers(1, max_candidates))
    bid = np.asarray(draw(st.lists(money, min_size=n, max_size=n)), dtype=np.float64)[None, :]
    pctr = np.asarray(draw(st.lists(probability, min_size=n, max_size=n)), dtype=np.float64)[None, :]
    return bid, pctr, draw(st.integers(1, 5)), draw(st.floats(0.0, 10.0, allow_nan=False))


@settings(max_examples=300)
@given(auctions())
def test_prices_are_at_most_bids_and_at_least_the_reserve(case: tuple) -> None:
    bid, pctr, slots, reserve = case
    allocation = run_gsp(bid, pctr, slots, reserve)
    shown = allocation.shown[0]
    winners = allocation.winners[0][shown]
    prices = allocation.price[0][shown]
    assert np.all(prices <= bid[0, winners])
    assert np.all(prices >= reserve - 1e-12)
    assert np.all(bid[0, winners] >= reserve)  # nobody under the reserve is shown
    assert len(set(winners.tolist())) == len(winners)  # an ad holds at most one slot
    assert np.all(shown[:-1] >= shown[1:])  # filled slots come first


@settings(max_examples=300)
@given(auctions())
def test_ecpm_and_price_per_impression_fall_from_slot_to_slot(case: tuple) -> None:
    bid, pctr, slots, _ = case
    allocation = run_gsp(bid, pctr, slots, reserve=0.0)
    shown = allocation.shown[0]
    winners = allocation.winners[0][shown]
    assert np.all(np.diff((bid * pctr)[0, winners]) <= 1e-12)
    # what slot k's winner pays per top-slot impression (price x own pCTR) is the next eCPM
    per_impression = allocation.price[0][shown] * pctr[0, winners]
    assert np.all(np.diff(per_impression) <= 1e-9)


@settings(max_examples=300)
@given(auctions(), st.floats(0.0, 5.0, allow_nan=False))
def test_a_reserve_only_removes_ads(case: tuple, extra: float) -> None:
    bid, pctr, slots, reserve = case
    low, high = run_gsp(bid, pctr, slots, reserve), run_gsp(bid, pctr, slots, reserve + extra)
    assert high.shown.sum() <= low.shown.sum()
    assert set(high.winners[high.shown].tolist()) <= set(np.nonzero(bid[0] >= reserve + extra)[0].tolist())


def best_welfare_by_search(value: np.ndarray, eligible: np.ndarray, theta: np.ndarray) -> float:
    """Every assignment of eligible ads to slots (slots may stay empty): the largest expected welfare."""
    ads = np.nonzero(eligible)[0].tolist()
    best = 0.0
    for filled in range(min(len(ads), len(theta)) + 1):
        for chosen in itertools.permutations(ads, filled):
            best = max(best, float(sum(theta[k] * value[a] for k, a in enumerate(chosen))))
    return best


@settings(max_examples=200)
@given(auctions(max_candidates=6), st.floats(0.2, 2.0))
def test_allocation_by_true_ecpm_maximises_expected_welfare(case: tuple, eta: float) -> None:
    bid, pctr, slots, reserve = case  # the oracle's own scores: its bids and CTRs are the truth
    theta = (1.0 / np.arange(1, slots + 1)) ** eta
    value = bid * pctr  # (1, K) expected value per impression at the top slot
    allocation = run_gsp(bid, pctr, slots, reserve)
    achieved = expected_welfare(allocation, value, theta)[0]
    best = best_welfare_by_search(value[0], bid[0] >= reserve, theta)
    assert achieved >= best - 1e-9 * max(1.0, best)


def test_prices_by_hand_and_empty_slots() -> None:
    bid = np.array([[2.0, 4.0, 1.0, 0.5]])
    pctr = np.array([[0.10, 0.02, 0.05, 0.30]])
    # eCPMs: 0.20, 0.08, 0.05, 0.15 -> slots: ad 0, ad 3, ad 1; ad 2 (0.05) prices the last slot
    allocation = run_gsp(bid, pctr, 3, reserve=0.3)
    assert allocation.winners.tolist() == [[0, 3, 1]]
    np.testing.assert_allclose(allocation.price, [[0.15 / 0.10, max(0.08 / 0.30, 0.3), 0.05 / 0.02]])
    sparse = run_gsp(bid, pctr, 3, reserve=1.5)  # only ads 0 and 1 bid at least the reserve
    assert sparse.winners.tolist() == [[0, 1, -1]]
    np.testing.assert_allclose(sparse.price, [[max(0.08 / 0.10, 1.5), 1.5, 0.0]])


def test_failed_scores_are_never_shown() -> None:
    bid = np.array([[1.0, 1.0, 1.0]])
    pctr = np.array([[np.nan, 0.2, 0.1]])
    allocation = run_gsp(bid, pctr, 2, 0.0)
    assert isinstance(allocation, Allocation) and allocation.winners.tolist() == [[1, 2]]


def test_an_ad_without_a_click_probability_is_never_shown() -> None:
    """An eCPM of 0 (pCTR 0) is not a bid for the slot: the slot stays empty, where it was given to the ad at
    a price of 0 / 0 (NaN) per click."""
    allocation = run_gsp(np.array([[1.0, 1.0]]), np.array([[0.1, 0.0]]), 2, 0.0)
    assert allocation.winners.tolist() == [[0, -1]]
    assert np.isfinite(allocation.price).all() and allocation.price.tolist() == [[0.0, 0.0]]


def test_an_ad_that_bids_0_is_never_shown_even_under_a_reserve_of_0() -> None:
    """An oCPA ad whose pCVR is 0 bids 0 per click: it offers nothing, so it takes no slot. Under ``--reserve 0``
    it was shown at a price of 0, and the day's price over bid (``price / bid`` of the shown ads) became 0/0."""
    bid = np.array([[1.0, 0.0, 0.5]])
    allocation = run_gsp(bid, np.array([[0.1, 0.3, 0.1]]), 3, 0.0)
    assert allocation.winners.tolist() == [[0, 2, -1]]
    assert allocation.price.tolist() == [[0.5, 0.0, 0.0]]  # the first priced by the second's eCPM, 0.05 / 0.1
    shown = allocation.shown[0]
    assert np.isfinite(allocation.price[0][shown] / bid[0, allocation.winners[0][shown]]).all()


def test_equal_ecpms_go_to_the_earlier_candidates_however_many() -> None:
    """Ties go to the earlier candidate: with 20 equal eCPMs among 40 (past numpy's 16-value insertion sort,
    where an unstable sort reorders them) the three slots go to the first three of them, 0, 2 and 4."""
    allocation = run_gsp(np.ones((1, 40)), np.tile([0.1, 0.05], (1, 20)), 3, 0.0)
    assert allocation.winners.tolist() == [[0, 2, 4]]
    assert allocation.price.tolist() == [[1.0, 1.0, 1.0]]  # each priced by an equal eCPM below it


def test_expected_welfare_weighs_each_slot_by_its_examination() -> None:
    allocation = Allocation(winners=np.array([[0, 1]]), price=np.zeros((1, 2)))
    welfare = expected_welfare(allocation, np.array([[2.0, 1.0]]), np.array([1.0, 0.5]))
    assert welfare.tolist() == [2.5]
