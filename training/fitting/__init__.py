"""Fitting a model: encoded logs as tensors, the training loop in one process or several, the epoch kept, and
the checkpoint it leaves."""
