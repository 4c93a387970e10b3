"""The synthetic advertising feedback loop of Moore et al. 2018 (Algorithm 2, section 5).

Labels Y ~ Bernoulli(0.1), features x_j ~ N(Y, sigma = 3) independently per feature: the distribution
D. A reservoir of 100,000 draws from D stands for the ads. Day 0 shows K random reservoir rows; on
each later day, K/2 candidate sets of 10,000 rows are drawn without replacement from the reservoir,
ranked by yesterday's L2 logistic regression (trained on the last two days shown) and their top 2
shown at positions 1 and 2, so every day's logs are chosen by the previous day's model. A shown ad is
clicked when Y = 1, except that in the user-level variant a position-2 click is flipped to 0 with
probability r. A held-out RUS set is drawn from D itself.

Only the top 2 of each candidate set are needed, so the sets are never materialised: in the
reservoir's ranking, the best rank of a uniformly random n-subset of N rows has the survival function
P(first >= g) = C(N - g, n) / C(N, n), and the second best is the first of the remaining n - 1 among
the rows ranked below it. Both are drawn exactly by inverting that survival function.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

SURVIVAL_FLOOR = 1e-15  # ranks whose survival probability is below this are never drawn


@dataclass(frozen=True)
class FeedbackLoopConfig:
    n_features: int = 2  # not given by the paper; 2 gives its last-day position-1 CTR (docs/moore2018.md)
    sigma: float = 3.0  # x_j ~ N(Y, sigma)
    positive_rate: float = 0.1  # P(Y = 1)
    reservoir: int = 100_000  # rows of D standing for the ads
    k: int = 500  # shown per day: K/2 candidate sets, top 2 of each
    candidates_per_set: int = 10_000  # drawn without replacement from the reservoir
    days: int = 100  # T
    window_days: int = 2  # each day's model, and the final models, train on the last two days
    rus: int = 100_000  # held-out rows drawn from D
    r: float = 0.0  # user-level bias: a position-2 click is flipped to 0 with this probability
    l2: float = 1.0  # L2 penalty of the daily logistic regression (sklearn's C = 1)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_features < 1 or self.sigma <= 0 or not 0 < self.positive_rate < 1:
            raise ValueError("need n_features >= 1, sigma > 0 and 0 < positive_rate < 1")
        if self.k < 2 or self.k % 2:
            raise ValueError(f"k must be an even number >= 2 (K/2 sets of 2 shown), not {self.k}")
        if not 2 <= self.candidates_per_set <= self.reservoir:
            raise ValueError("need 2 <= candidates_per_set <= reservoir")
        if self.days < self.window_days or self.window_days < 1 or self.rus < 2:
            raise ValueError("need days >= window_days >= 1 and rus >= 2")
        if not 0.0 <= self.r <= 1.0:
            raise ValueError(f"r must be a probability, not {self.r}")


@dataclass
class Rows:
    """Feature rows with labels (and, for shown rows, their position and observed click)."""

    x: np.ndarray  # (n, d) float64
    y: np.ndarray  # (n,) true label Y
    position: np.ndarray  # (n,) 1 or 2; 0 for rows never shown
    click: np.ndarray  # (n,) observed click: Y, possibly flipped at position 2

    def __len__(self) -> int:
        return self.y.shape[0]

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        return Rows(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("x", "y", "position", "click")))


@dataclass
class FeedbackLoopRun:
    days: list[Rows]  # the rows shown each day, day 0 (random) first
    position_ctr_by_day: list[list[float]]  # [P(click | position 1), P(click | position 2)] per day 1..T
    window: Rows  # the last window_days days: the final models' training data
    last_model: tuple[np.ndarray, float]  # the logistic regression trained on the window (weights, intercept)
    rus: Rows  # held-out draws from D (position 0, click = Y)
    reservoir_mean: np.ndarray  # (d,) feature means over the candidate pool
    reservoir_std: np.ndarray  # (d,) and their standard deviations


def draw(rng: np.random.Generator, n: int, config: FeedbackLoopConfig) -> Rows:
    """n rows of D."""
    y = (rng.random(n) < config.positive_rate).astype(np.int64)
    x = rng.normal(y[:, None].astype(np.float64), config.sigma, (n, config.n_features))
    return Rows(x, y, np.zeros(n, dtype=np.int64), y.copy())


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 30) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression by Newton's method: min sum log loss + l2/2 |w|^2 (intercept free)."""
    design = np.hstack([x, np.ones((x.shape[0], 1))])  # (n, d + 1)
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0
    theta = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        gradient = design.T @ (p - y) + penalty * theta
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(design.shape[1])
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta[:-1], float(theta[-1])


def logistic_scores(model: tuple[np.ndarray, float], x: np.ndarray) -> np.ndarray:
    weights, intercept = model
    return 1.0 / (1.0 + np.exp(-(x @ weights + intercept)))


def first_selected(n_items: np.ndarray, n_drawn: np.ndarray, u: np.ndarray) -> np.ndarray:
    """0-based rank of the best of ``n_drawn`` rows drawn without replacement from ``n_items`` ranked rows.

    Inverts P(first >= g) = prod_{j=1..g} (1 - n / (N - j + 1)) at the uniform draws ``u``; arrays broadcast.
    """
    n_items, n_drawn, u = np.broadcast_arrays(np.asarray(n_items), np.asarray(n_drawn), np.asarray(u))
    fraction = float(np.min(n_drawn / n_items))
    cap = min(int(np.max(n_items - n_drawn)) + 1, math.ceil(math.log(SURVIVAL_FLOOR) / math.log1p(-fraction)) + 1)
    g = np.arange(1, cap + 1)  # (G,)
    remaining = n_items[:, None] - g[None, :] + 1.0  # (S, G) rows left before the g-th
    ratio = np.clip(1.0 - n_drawn[:, None] / remaining, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        log_survival = np.cumsum(np.log(ratio), axis=1)  # (S, G) log P(first >= g)
    return np.sum(log_survival > np.log(u)[:, None], axis=1)


def top_two_of_random_sets(
    order: np.ndarray, n_sets: int, set_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Reservoir rows at positions 1 and 2 of ``n_sets`` random sets, given the reservoir's ranking ``order``."""
    n = order.size
    sets = np.full(n_sets, n)
    first = first_selected(sets, np.full(n_sets, set_size), rng.random(n_sets))
    second = first + 1 + first_selected(sets - first - 1, np.full(n_sets, set_size - 1), rng.random(n_sets))
    return order[first], order[second]


def show(reservoir: Rows, first: np.ndarray, second: np.ndarray, config: FeedbackLoopConfig, rng) -> Rows:
    """The rows shown at positions 1 and 2, with their observed clicks (user-level flips at position 2)."""
    rows = np.concatenate([first, second])
    position = np.repeat([1, 2], [first.size, second.size])
    y = reservoir.y[rows]
    flipped = (position == 2) & (rng.random(rows.size) < config.r)
    return Rows(reservoir.x[rows], y, position, np.where(flipped, 0, y))


def simulate(config: FeedbackLoopConfig) -> FeedbackLoopRun:
    """Runs the feedback loop for ``config.days`` days after the random day 0."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(3)]
    data_rng, loop_rng, rus_rng = streams
    reservoir = draw(data_rng, config.reservoir, config)
    day0 = loop_rng.choice(config.reservoir, config.k, replace=False)
    days = [show(reservoir, day0[: config.k // 2], day0[config.k // 2 :], config, loop_rng)]
    position_ctr_by_day = []
    model = None
    for _day in range(1, config.days + 1):
        window = Rows.concat(days[-config.window_days :])
        model = fit_logistic(window.x, window.click, config.l2)
        scores = logistic_scores(model, reservoir.x)
        order = np.lexsort((loop_rng.random(config.reservoir), -scores))  # best first, random ties
        first, second = top_two_of_random_sets(order, config.k // 2, config.candidates_per_set, loop_rng)
        shown = show(reservoir, first, second, config, loop_rng)
        days.append(shown)
        position_ctr_by_day.append([float(shown.click[shown.position == p].mean()) for p in (1, 2)])
    window = Rows.concat(days[-config.window_days :])
    last_model = fit_logistic(window.x, window.click, config.l2)
    logger.info("feedback loop: %d days, last day's position CTRs %s", config.days, position_ctr_by_day[-1])
    rus = draw(rus_rng, config.rus, config)
    x = reservoir.x
    return FeedbackLoopRun(days, position_ctr_by_day, window, last_model, rus, x.mean(axis=0), x.std(axis=0))
