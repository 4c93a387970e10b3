"""The offline trainer. Its import asks MKL for matrix products whose sums do not depend on the thread count,
before any training code runs one (training/thread_invariant_sums.py)."""

from training.thread_invariant_sums import ask_for_thread_invariant_sums

ask_for_thread_invariant_sums()
