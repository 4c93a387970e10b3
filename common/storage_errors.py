"""The errors of storage that failed under a path, not of the files there (which a change of them mends: a
missing, unreadable or wrong file): a device's or a FUSE daemon's EIO, a network filesystem's stale handle,
time-out or lost server. One list for the two that tell them apart: the service retries a version refused on
one (service/models/refusal.py), and a ``ctr`` command says one in one line, exit 1 (cli/errors.py), where
``ctr prepare`` ended in a traceback on a dead FUSE mount's ENOTCONN while the service retried it.
"""

from __future__ import annotations

import errno

FAILED_STORAGE_ERRNOS = frozenset(
    getattr(errno, code)
    for code in (
        "EIO",
        "ESTALE",
        "ETIMEDOUT",
        "ENOTCONN",
        "ECONNRESET",
        "ECONNABORTED",
        "EHOSTDOWN",
        "EHOSTUNREACH",
        "ENETDOWN",
        "ENETUNREACH",
        "ENOLINK",
        "EREMOTEIO",
    )
    if hasattr(errno, code)  # not every system names each
)
# a read that was interrupted or would have blocked: it passes by itself, so worth trying again, not a failure
PASSING_ERRNOS = frozenset({errno.EAGAIN, errno.EINTR})
