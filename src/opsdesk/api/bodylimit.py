"""Refuse request bodies over the configured size with 413, before they are read whole.

Pure ASGI (not ``BaseHTTPMiddleware``) so it sees the body as it streams. Written here
rather than FastAPI's ``max_body_size``: that one lets a route run despite a too-long
Content-Length and then answers 413 in text/plain, not as a problem document.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsdesk.api.problems import problem_response


class BodyTooLarge(HTTPException):
    """The body went past the limit while streaming; rendered as a 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"the request body is larger than {limit} bytes (OPSDESK_MAX_BODY_BYTES); send less",
        )


class BodySizeLimit:
    """ASGI middleware: a Content-Length over ``max_bytes`` is refused at once; a body
    without one (chunked) is counted as it arrives and refused when it passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            # raised where no exception handler turned it into a response (e.g. a
            # background read); answer here unless a response is already under way
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        exc = BodyTooLarge(self.max_bytes)
        response = problem_response(
            Request(scope), 413, "body-too-large", exc.detail, headers={"Connection": "close"}
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length; count the body instead
    return None
