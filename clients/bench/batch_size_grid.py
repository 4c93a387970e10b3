"""The batch sizes ``ctr bench batch-sizes`` measures unless ``--sizes`` says otherwise (rows per ONNX
Runtime run). A module of its own, so that the command's help states them without importing the
benchmark and NumPy with it."""

from __future__ import annotations

SIZES = (1, 8, 32, 64, 128, 256, 512, 1024)
