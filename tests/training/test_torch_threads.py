"""training/torch_threads.py: a block's torch thread count, the one before it given back however the block ends."""

from __future__ import annotations

import pytest
import torch

from training.torch_threads import using_torch_threads


def test_the_block_runs_at_its_count_and_the_count_before_is_given_back():
    before = torch.get_num_threads()
    with using_torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
        with using_torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


def test_a_block_that_raises_gives_the_count_back_too():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="stopped"), using_torch_threads(before + 1):
        raise RuntimeError("stopped")
    assert torch.get_num_threads() == before
