"""Evaluating a model: the metrics, the constant baseline, and the reports of `ctr evaluate` on the world's
held-out day, on a user's held-out log, against a running service and for a position-debiased model."""
