"""Recall@k and NDCG@k over the whole catalog, split by item group."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation.retrieval_metrics import retrieval_metrics, top_k


def test_top_k_is_ordered() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7]])
    np.testing.assert_array_equal(top_k(scores, 3), [[1, 3, 2]])


def test_tied_scores_favour_no_item_and_distinct_ones_rank_as_a_sort_does() -> None:
    """A model scoring every item alike: argpartition's order put the same items first for every query (hot
    recall@50 0.164 against long-tail 0.069 for a random ranking's 0.10); now each query draws its own order
    of the ties, the same on every call."""
    tied = np.zeros((2000, 100))
    ranked = top_k(tied, 10)
    shown = np.bincount(ranked.ravel(), minlength=100)  # 200 times each if no item is favoured
    assert shown.min() > 140 and shown.max() < 260
    np.testing.assert_array_equal(top_k(tied, 10), ranked)
    hot = np.arange(100) < 20
    relevant = np.tile(np.r_[0:10, 50:60], (2000, 1))  # 10 hot and 10 long-tail items per query
    result = retrieval_metrics(tied, relevant, {"hot": hot, "long_tail": ~hot}, ks=(50,))
    assert result["hot"]["recall@50"] == pytest.approx(0.5, abs=0.02) == result["long_tail"]["recall@50"]
    distinct = np.random.default_rng(0).random((50, 200))
    np.testing.assert_array_equal(top_k(distinct, 30), np.argsort(-distinct, axis=1)[:, :30])


def test_hand_computed_recall_and_ndcg() -> None:
    # catalog of 6 items; the model ranks 5, 4, 3, 2, 1, 0; relevant are 5 (hot) and 2, 0 (long tail)
    scores = np.arange(6, dtype=float)[None, :]
    relevant = np.array([[5, 2, 0]])
    hot = np.array([False, False, False, False, False, True])
    groups = {"all": np.ones(6, dtype=bool), "hot": hot, "long_tail": ~hot}
    result = retrieval_metrics(scores, relevant, groups, ks=(2, 4))
    assert result["all"]["recall@2"] == pytest.approx(1 / 3)
    assert result["all"]["recall@4"] == pytest.approx(2 / 3)
    assert result["hot"]["recall@2"] == 1.0 and result["hot"]["ndcg@2"] == 1.0
    assert result["long_tail"]["recall@2"] == 0.0
    assert result["long_tail"]["recall@4"] == pytest.approx(1 / 2)
    # long tail at k=4: item 2 at rank 4 -> 1/log2(5); ideal: two items at ranks 1, 2
    assert result["long_tail"]["ndcg@4"] == pytest.approx((1 / np.log2(5)) / (1 + 1 / np.log2(3)))


def test_perfect_scores_reach_one_and_queries_without_group_items_are_skipped() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((5, 40))
    relevant = np.argsort(-truth, axis=1)[:, :10]
    groups = {"all": np.ones(40, dtype=bool), "none": np.zeros(40, dtype=bool)}
    result = retrieval_metrics(truth, relevant, groups, ks=(10,))
    assert result["all"] == pytest.approx({"recall@10": 1.0, "ndcg@10": 1.0})
    assert np.isnan(result["none"]["recall@10"])


def test_a_cut_off_past_the_catalog_ranks_the_whole_catalog() -> None:
    """k = 10 over 4 items raised a broadcast error (the discounts kept 10 entries, the ranking 4)."""
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [0.4, 0.3, 0.2, 0.1]])
    relevant = np.array([[0], [0]])
    result = retrieval_metrics(scores, relevant, {"all": np.ones(4, dtype=bool)}, ks=(2, 10))
    assert result["all"]["recall@10"] == 1.0 and result["all"]["recall@2"] == 0.5
    # query 0 finds item 0 last (rank 4), query 1 first
    assert result["all"]["ndcg@10"] == pytest.approx((1 / np.log2(5) + 1) / 2)
