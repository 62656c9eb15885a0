"""Security headers on every response: problems, 404s, 500s and the docs pages included.

Pure ASGI (``BaseHTTPMiddleware`` costs a task and a stream per request): it only
appends precomputed header pairs to the ``http.response.start`` message. A response
that sets its own ``Content-Security-Policy`` (the docs pages, whose scripts are
hashed) keeps it; every other one gets the JSON API's policy, which allows nothing.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The JSON API loads nothing and may be framed by nobody.
API_CSP = "default-src 'none'; frame-ancestors 'none'"

_ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_CSP = b"content-security-policy"
#: sent over HTTPS only: a browser ignores it over HTTP, and it must not pin a plain site
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeaders:
    """ASGI middleware adding the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._csp = (_CSP, API_CSP.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                headers.extend(pair for pair in _ALWAYS if pair[0] not in names)
                if _CSP not in names:
                    headers.append(self._csp)
                if https and _HSTS[0] not in names:
                    headers.append(_HSTS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
