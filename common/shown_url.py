"""A URL as a message or a report may show it: without the password it may carry.

The CLI's reports record the command that made them (``ctr evaluate serving --url ...``), and reports are
committed; the client's messages name the service they called. Both show a URL through this, where the
report's writer had imported the HTTP client for it.
"""

from __future__ import annotations


def shown_url(url: str) -> str:
    """``url`` to be written in a message or a report: its credentials (``user:password@``, which httpx
    sends as Basic auth) as ``***@``; a report's ``command`` kept them, and reports are committed."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if not sep or "@" not in authority:
        return url
    return f"{scheme}://***@{authority.rsplit('@', 1)[1]}{slash}{path}"
