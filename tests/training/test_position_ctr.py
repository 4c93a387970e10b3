import numpy as np
import pyarrow as pa
import pytest

from common.encoder import FeatureEncoder
from tests.support.model_batches import SPEC
from training.fitting.dataset import ImpressionTensors
from training.position_ctr import position_ctr, position_ctr_per_row


def four_rows() -> pa.Table:
    """Four impressions at positions 1, 2, 1, 2, the first clicked."""
    return pa.table(
        {
            "user_id": ["u1", "u2", "u3", "u4"],
            "ad_id": ["a1", "a2", "a3", "a4"],
            "ad_price": [1.0, 2.0, 3.0, 4.0],
            "position": [1, 2, 1, 2],
            "click": [1, 0, 0, 0],
            "conversion": [0, 0, 0, 0],
        }
    )


def test_position_ctr_per_position_and_per_row():
    position = np.array([1, 2, 1, 3, 2, 1])
    click = np.array([1, 0, 1, 0, 1, 0])
    assert position_ctr(position, click) == {1: pytest.approx(2 / 3), 2: 0.5, 3: 0.0}
    np.testing.assert_allclose(position_ctr_per_row(position, click), [2 / 3, 0.5, 2 / 3, 0.0, 0.5, 2 / 3], rtol=1e-6)


def test_lengths_must_agree():
    with pytest.raises(ValueError, match="differ in length"):
        position_ctr(np.array([1, 2]), np.array([1]))


def test_impression_tensors_carry_b():
    table = four_rows()
    tensors = ImpressionTensors.from_table(table, FeatureEncoder(SPEC)).tensors
    np.testing.assert_allclose(tensors["b"].numpy(), [0.5, 0.0, 0.5, 0.0])


def test_a_chunk_of_a_larger_log_takes_b_from_the_whole_log_s_position_ctr():
    """A streamed chunk's b is its positions' CTR over the whole log (the ``position_ctr`` table given), not over
    the chunk's own rows, whose few clicks would give each chunk another b for the same slot."""
    table = four_rows()
    whole_log = {1: 0.25, 2: 0.125, 3: 0.0625}
    tensors = ImpressionTensors.from_table(table, FeatureEncoder(SPEC), position_ctr=whole_log).tensors
    np.testing.assert_allclose(tensors["b"].numpy(), [0.25, 0.125, 0.25, 0.125])
    with pytest.raises(ValueError, match=r"positions \[2\] have no CTR"):
        ImpressionTensors.from_table(table, FeatureEncoder(SPEC), position_ctr={1: 0.25})
