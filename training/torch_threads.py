"""Torch's thread count for a stretch of work, the count before it given back after it.

``torch.set_num_threads`` sets the process's count: an experiment that set one thread for its tiny networks and left
it so ran whatever came after it in the process on one thread too (the next test of a session, a notebook's training
after ``moore2018.run``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def using_torch_threads(count: int) -> Iterator[None]:
    """Run the block at ``count`` torch threads; the count before it is set again on the way out, an error's too."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
