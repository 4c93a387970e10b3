"""What a command given ``--url`` checks of the service there before it starts: that it is ready, and that it
takes the admin token; each a ValueError naming the URL, in one line."""

from __future__ import annotations

import httpx

from clients.client.base_url import scheme_problem
from clients.client.headers import request_headers
from clients.client.sync_client import ScoringClient
from common.shown_url import shown_url


def require_ready(url: str) -> None:
    """ValueError naming ``url`` unless a service there answers ``GET /v2/health/ready`` with 200: what a
    command given ``--url`` checks before it starts (an unreachable or malformed URL raised a traceback). A 404
    is said as no service there: ``python -m http.server`` or a URL ending ``/v1`` was "answers but is not ready"."""
    status = _probe(url, "GET", "/v2/health/ready")
    if status == 404:  # another HTTP server, or a URL with a path the service is not under
        raise ValueError(
            f"--url {shown_url(url)}: GET /v2/health/ready answered 404: no ctr service there (another server, or a"
            " path in the URL the service is not mounted under)"
        )
    if status != 200:
        raise ValueError(
            f"--url {shown_url(url)}: the service answers but is not ready (GET /v2/health/ready: {status})"
        )


def require_admin(url: str, token: str) -> None:
    """ValueError unless the service at ``url`` takes ``token`` on its admin routes (``POST
    /v2/repository/index``): what ``ctr auction --url --admin-token`` checks before its first day, where a
    wrong token or a service without admin routes was found only at the first reload, a day's scoring
    and a training later, its exported version left in the repository."""
    status = _probe(url, "POST", "/v2/repository/index", token)
    if status == 404:
        raise ValueError(f"--url {shown_url(url)}: the service has no admin routes (start it with CTR_ADMIN_TOKEN)")
    if status != 200:
        raise ValueError(f"--admin-token: the service at {shown_url(url)} refuses it ({status})")


def _probe(url: str, method: str, path: str, token: str | None = None) -> int:
    """The status of one call to the service at ``url``; ValueError when nothing answers there."""
    problem = scheme_problem(url)
    if problem is not None:  # httpx read the host as the scheme: "no service answers there" sent no one to the URL
        raise ValueError(f"--url {problem}")
    try:
        with ScoringClient(url, timeout_s=5.0, max_retries=0) as client:
            return client._http.request(method, path, headers=request_headers(token)).status_code
    except (httpx.TransportError, httpx.InvalidURL) as error:
        raise ValueError(
            f"--url {shown_url(url)}: no service answers there ({error or type(error).__name__})"
        ) from None
