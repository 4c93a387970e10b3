"""What keeps a service's address from being one the clients can call: no ``http://`` or ``https://`` before it.

httpx reads ``localhost:8000``'s host as its scheme, and says so only at the first call ("Request URL has an
unsupported protocol 'localhost://'"), which ``--url`` said as "no service answers there"."""

from __future__ import annotations

import re

from common.shown_url import shown_url

SCHEMES = ("http", "https")
HOST_PORT = re.compile(r"([\w.-]+|\[[0-9A-Fa-f:.]+\])(:\d+)?")  # localhost:8000, [::1]:8000: a URL less its http://


def scheme_problem(url: str) -> str | None:
    """What is wrong with ``url``'s scheme, said after the URL (``localhost:8000 names no scheme: write
    http://localhost:8000``), or None where it is http or https."""
    scheme, separator, _ = url.partition("://")
    if not separator:
        fix = f"write http://{url}" if HOST_PORT.fullmatch(url) else "write it as http://HOST:PORT"
        return f"{shown_url(url)} names no scheme: {fix}"
    if scheme.lower() not in SCHEMES:
        return f"{shown_url(url)}: the scheme {scheme}:// is not http:// or https://"
    return None
