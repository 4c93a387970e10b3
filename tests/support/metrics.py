"""Figures read back from the service's /metrics exposition (Prometheus' text format)."""

from __future__ import annotations


def series(text: str, name: str, version: int) -> dict[str, float]:
    """The ``output`` (or no label: "") -> value of the model esmm's ``name`` series of ``version``."""
    found = {}
    for line in text.splitlines():
        if line.startswith(f'{name}{{model="esmm",version="{version}"'):
            labels, value = line.rsplit(" ", 1)
            found[labels.partition('output="')[2].rstrip('"}')] = float(value)
    return found
