"""``[training] validation_fraction`` is a share of the rows held out, 0 (none) up to but not including 1: all of
them held out would leave no row to train on."""

import pytest

from training.fitting.settings import TrainingConfig


@pytest.mark.parametrize("fraction", [1.0, 1.5, -0.1])
def test_a_validation_fraction_outside_zero_to_one_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match=rf"^validation_fraction must be in \[0, 1\), not {fraction}$"):
        TrainingConfig(validation_fraction=fraction)


def test_no_validation_rows_and_nearly_all_are_taken() -> None:
    assert TrainingConfig(validation_fraction=0.0).validation_fraction == 0.0
    assert TrainingConfig(validation_fraction=0.99).validation_fraction == 0.99
