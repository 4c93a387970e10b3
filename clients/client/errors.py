"""``ServiceError``, the client's error for any non-200 answer, and how an error quotes an answer's
text."""

from __future__ import annotations

ERROR_TEXT_KEPT = 500  # characters kept of an error answer that is not the service's JSON (a proxy's HTML page)


class ServiceError(Exception):
    """A non-200 answer: ``status``, the service's ``error`` message, the ``field`` at fault, for a 503
    the seconds its ``Retry-After`` asked to wait (also when longer than the client waits), and the
    answer's ``X-Request-ID`` (``request_id``: the one the call sent, which the service echoes, or the one
    the service gave a call that sent none)."""

    def __init__(
        self,
        status: int,
        error: str,
        field: str | None = None,
        retry_after_s: float | None = None,
        request_id: str | None = None,
    ) -> None:
        said = f"{status}: {error}" + (f" (field {field})" if field else "")
        super().__init__(said + (f" (X-Request-ID {request_id})" if request_id else ""))
        self.status = status
        self.error = error
        self.field = field
        self.retry_after_s = retry_after_s
        self.request_id = request_id

    def __reduce__(self) -> tuple[type[ServiceError], tuple[int, str, str | None, float | None, str | None]]:
        return ServiceError, (self.status, self.error, self.field, self.retry_after_s, self.request_id)  # pickle, copy


def shortened(text: str) -> str:
    """An answer's text as an error message: a proxy's HTML page of 100 KB is cut to ``ERROR_TEXT_KEPT``
    characters and "…", where it filled a log line, the auction's report and every ``str(error)``."""
    return text if len(text) <= ERROR_TEXT_KEPT else text[:ERROR_TEXT_KEPT] + "…"
