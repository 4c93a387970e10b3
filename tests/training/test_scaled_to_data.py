"""Training on your own logs: a small log gets enough optimiser steps, a large one is left alone."""

from training.fitting.settings import TrainingConfig
from training.pipeline import MAX_EPOCHS, MIN_BATCH, MIN_STEPS, scaled_to_data, steps_of


def test_a_small_log_is_not_trained_for_five_steps():
    shipped = TrainingConfig(epochs=1, batch_size=2048, validation_fraction=0.1)
    assert steps_of(shipped, 10_000) == 5  # the 10,000-impression log
    scaled = scaled_to_data(shipped, 10_000)
    assert scaled.batch_size == MIN_BATCH and steps_of(scaled, 10_000) >= MIN_STEPS


def test_limits_and_large_logs():
    tiny = scaled_to_data(TrainingConfig(epochs=1, batch_size=2048), 300)
    assert tiny.batch_size == MIN_BATCH and tiny.epochs == MAX_EPOCHS
    large = TrainingConfig(epochs=2, batch_size=1024)
    assert scaled_to_data(large, 1_000_000) is large
    assert scaled_to_data(TrainingConfig(epochs=5, batch_size=64), 2_000).batch_size == 64  # never grows


def test_a_shrunk_batch_splits_evenly_over_the_streaming_processes():
    """Streamed by N processes each takes batch_size / N rows a step: a shrunk batch is a multiple of N."""
    config = TrainingConfig(epochs=2, batch_size=1024, validation_fraction=0.1)
    assert scaled_to_data(config, 30_000).batch_size == 270
    assert scaled_to_data(config, 30_000, processes=4).batch_size == 272
    assert scaled_to_data(config, 30_000, processes=3).batch_size == 270
    assert scaled_to_data(config, 2_000, processes=3).batch_size == 129  # never below MIN_BATCH (128): 126 was
    odd = TrainingConfig(epochs=1, batch_size=130, validation_fraction=0.1)  # 129 up to 132 would pass its batch
    assert scaled_to_data(odd, 28_667, processes=4).batch_size == 128
    assert scaled_to_data(TrainingConfig(epochs=1, batch_size=1000), 10**7, processes=3).batch_size == 1000  # unscaled
