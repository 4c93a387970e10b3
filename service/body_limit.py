"""A pure ASGI middleware that answers 413 to request bodies over a size limit.

The declared ``Content-Length`` is checked before the application runs; bodies without one (chunked
uploads) are counted as they stream in, and reading stops at the first byte over the limit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response


class BodyTooLarge(Exception):
    pass


def too_large_message(max_bytes: int) -> str:
    return f"request body is larger than {max_bytes} bytes"


def declared_length_refusal(value: bytes, max_bytes: int) -> tuple[int, str] | None:
    """The status and message for a Content-Length header value that cannot be accepted, or None."""
    if not value.isdigit():
        return 400, "bad Content-Length"
    if int(value) > max_bytes:
        return 413, too_large_message(max_bytes)
    return None


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return too_large_message(self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length":
                refusal = declared_length_refusal(value, self.max_bytes)
                if refusal is not None:
                    await error_response(*refusal)(scope, receive, send)
                    return
                break

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:  # the application answered before reading everything: nothing left to say
                return
            await error_response(413, self._message())(scope, receive, send)
