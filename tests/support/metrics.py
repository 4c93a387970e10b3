"""Figures read back from the service's /metrics exposition (Prometheus' text format)."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx


def responses(url: str, code: int) -> int:
    """``ctr_http_responses_total`` of ``code``: the service's own answers, the protocol's counted too."""
    series = f'ctr_http_responses_total{{code="{code}"}} '
    return sum(int(line.rsplit(" ", 1)[1]) for line in httpx.get(f"{url}/metrics").text.splitlines() if series in line)


def gauge(url: str, name: str) -> float:
    """The value of ``name``, a series without labels (``ctr_http_body_bytes_in_flight``)."""
    text = httpx.get(f"{url}/metrics").text
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).split()[1])


def series(text: str, name: str, version: int) -> dict[str, float]:
    """The ``output`` (or no label: "") -> value of the model esmm's ``name`` series of ``version``."""
    found = {}
    for line in text.splitlines():
        if line.startswith(f'{name}{{model="esmm",version="{version}"'):
            labels, value = line.rsplit(" ", 1)
            found[labels.partition('output="')[2].rstrip('"}')] = float(value)
    return found


def clipped(url: str, version: int = 1) -> dict[str, int]:
    """Each numeric feature -> ``ctr_feature_values_clipped_total`` of model esmm's ``version``: the request values
    clipped to its training range so far."""
    prefix = f'ctr_feature_values_clipped_total{{model="esmm",version="{version}",feature="'
    lines = [line for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines() if line.startswith(prefix)]
    return {line[len(prefix) :].split('"', 1)[0]: int(line.rsplit(" ", 1)[1]) for line in lines}


def clipped_while(url: str, send: Callable[[], object]) -> dict[str, int]:
    """How far each feature's ``clipped`` count moved while ``send()`` ran."""
    before = clipped(url)
    send()
    return {feature: n - before[feature] for feature, n in clipped(url).items()}


def pending(http: httpx.Client, version: int) -> int:
    """The requests waiting in or running through esmm ``version``'s batcher, as /metrics says."""
    text = http.get("/metrics").text
    return int(re.search(rf'inference_pending_request_count\{{model="esmm",version="{version}"\}} (\d+)', text)[1])
