"""The ``[training]`` table of a model's config.toml: ``TrainingConfig``, its defaults and its checks.

It imports no torch, so that ``ctr new`` writes the defaults, and ``ctr train`` / ``ctr evaluate`` refuse a
mistake in the table, before torch's import (~2 s of CPU); the training loop (training/fitting/fit.py) reads it.
Each check that is a feature's own says why beside the feature: the embedding optimiser in
training/fitting/embedding_optimizer.py, the kept epoch and its early stop in training/fitting/kept_epoch.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from common.plural import counted

EMBEDDING_OPTIMIZERS = ("adam", "sparse_adam")  # what embedding_optimizer may say (embedding_optimizer.py)
# The spec's buckets summed above which `ctr new` writes "sparse_adam": on this 2-core CPU at batch 1,024, two
# interleaved runs of esmm_debiased and cvr_base timed SparseAdam's step 1-11% longer than dense Adam's up to 50,000
# buckets, within 3.3% at 100,000, and from 200,000 up shorter (1.2-1.5x; 3-11x at 0.7-2 million) in 6 or 7 of 7
# rounds at each point (docs/scale.md, "A large embedding table")
SPARSE_ADAM_ABOVE_BUCKETS = 100_000

# The [training] settings chosen from the log's size unless config.toml sets one of them (training/pipeline.py
# training_settings); `ctr new` leaves them out of an impression model's config
SCALED_SETTINGS = frozenset({"epochs", "batch_size"})


@dataclass
class TrainingConfig:
    epochs: int = 2  # passes over the training logs
    batch_size: int = 1024  # impressions per minibatch
    learning_rate: float = 1e-3  # Adam
    weight_decay: float = 0.0  # Adam's L2 penalty
    seed: int = 0  # initialisation and shuffling
    validation_fraction: float = 0.1  # the latest rows, held out for the metrics in model.json
    keep_best_epoch: bool = False  # export the epoch with the lowest validation loss, not the last (kept_epoch.py)
    early_stop_patience: int = 0  # with keep_best_epoch: end the main phase after N epochs not the best (0: never)
    embedding_optimizer: str = "adam"  # or "sparse_adam": lazy Adam for the embedding table (embedding_optimizer.py)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, not {self.epochs} and {self.batch_size}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):  # inf trained to a nan loss, exit 0
            raise ValueError(f"[training] learning_rate must be a positive finite number, not {self.learning_rate}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), not {self.validation_fraction}")
        refuse_embedding_optimizer(self.embedding_optimizer, self.weight_decay)
        refuse_early_stop(self.early_stop_patience, self.keep_best_epoch)


def refuse_embedding_optimizer(embedding: str, weight_decay: float) -> None:
    """ValueError for a ``[training] embedding_optimizer`` that is not one, or ``sparse_adam`` with a weight decay
    (SparseAdam has none: decaying every row each step is the dense work it leaves out)."""
    if embedding not in EMBEDDING_OPTIMIZERS:
        choices = ", ".join(EMBEDDING_OPTIMIZERS)
        raise ValueError(f"[training] embedding_optimizer must be one of {choices}, not {embedding!r}")
    if embedding == "sparse_adam" and weight_decay:
        raise ValueError(
            f'[training] embedding_optimizer = "sparse_adam" takes no weight_decay (it is {weight_decay}): '
            'SparseAdam has none; set weight_decay = 0 or embedding_optimizer = "adam"'
        )


def refuse_early_stop(patience: int, keep_best_epoch: bool) -> None:
    """ValueError naming ``[training] early_stop_patience`` for a negative patience, or one without
    ``keep_best_epoch = true`` (why not implied: training/fitting/kept_epoch.py's docstring)."""
    if patience < 0:
        raise ValueError(
            f"[training] early_stop_patience must be >= 0 (0: train every epoch; N: stop after N epochs without a "
            f"lower validation loss), not {patience}"
        )
    if patience and not keep_best_epoch:
        raise ValueError(
            f"[training] early_stop_patience = {patience} needs keep_best_epoch = true: a run stopped early ends "
            f"{counted(patience, 'epoch')} past its best, and without it that last, worse epoch "
            "would be exported"
        )
