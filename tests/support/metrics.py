"""Figures read back from the service's /metrics exposition (Prometheus' text format)."""

from __future__ import annotations

import httpx


def responses(url: str, code: int) -> int:
    """``ctr_http_responses_total`` of ``code``: the service's own answers, the protocol's counted too."""
    series = f'ctr_http_responses_total{{code="{code}"}} '
    return sum(int(line.rsplit(" ", 1)[1]) for line in httpx.get(f"{url}/metrics").text.splitlines() if series in line)


def series(text: str, name: str, version: int) -> dict[str, float]:
    """The ``output`` (or no label: "") -> value of the model esmm's ``name`` series of ``version``."""
    found = {}
    for line in text.splitlines():
        if line.startswith(f'{name}{{model="esmm",version="{version}"'):
            labels, value = line.rsplit(" ", 1)
            found[labels.partition('output="')[2].rstrip('"}')] = float(value)
    return found
