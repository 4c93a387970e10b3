"""``ctr experiment moore2018``'s (and ``moore2018-checks``') settings: the feedback loop's, the lambdas swept, the
networks' schedule and the adversary's penalty.

Nothing here imports torch (~2 s of CPU), so that ``ctr experiment moore2018`` says a lambda out of range or an
unknown ``--adversary-loss`` before that import (training/experiments/moore2018.py runs the sweep).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from training.experiments.feedback_loop import FeedbackLoopConfig
from training.models.settings.adversarial_ctr import AdversarialCTRConfig

LAMBDAS = (0.0, 0.9, 0.99, 0.999, 0.9999, 0.99999)  # the paper's reverse log scale


@dataclass
class Moore2018Config:
    loop: FeedbackLoopConfig = field(default_factory=FeedbackLoopConfig)
    lambdas: tuple[float, ...] = LAMBDAS
    initialisations: int = 10  # the paper's 10 weight initialisations per model
    epochs: int = 100  # main alternating training (paper: 100)
    bias_epochs: int = 100  # Bias network alone afterwards (paper: 100)
    batch_size: int = 100  # paper: minibatch 100
    learning_rate: float = 0.01  # paper: SGD, lr 0.01
    adversary_loss: str = "covariance"  # Loss_N's penalty: the paper's Cov^2, or Corr^2 (docs/moore2018.md)
    loop_seeds: int = 1  # feedback loops simulated, with seeds loop.seed, loop.seed + 1, ...

    def __post_init__(self) -> None:
        if self.initialisations < 1 or self.epochs < 1 or self.loop_seeds < 1:
            raise ValueError("initialisations, epochs and loop_seeds must be >= 1")
        AdversarialCTRConfig(adversary_loss=self.adversary_loss)  # names a known penalty


def quick_config(r: float = 0.0, seed: int = 0) -> Moore2018Config:
    """A small version for tests: the same pipeline on a tenth of everything."""
    loop = FeedbackLoopConfig(reservoir=10_000, k=200, candidates_per_set=1_000, days=10, rus=5_000, r=r, seed=seed)
    return Moore2018Config(loop=loop, lambdas=(0.0, 0.99, 0.9999), initialisations=2, epochs=5, bias_epochs=5)
