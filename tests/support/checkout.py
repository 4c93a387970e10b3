"""The root folder of this checkout: for the tests that read its files (``models/``, the docs, the packaging
files) or run its code in a process of their own (on ``PYTHONPATH``)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
