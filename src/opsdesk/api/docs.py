"""``/docs`` (Swagger UI) and ``/redoc`` from assets shipped in the package, no CDN.

The JavaScript and CSS are vendored from the npm packages ``swagger-ui-dist`` 5.35.0
(Apache-2.0) and ``redoc`` 2.5.4 (MIT) into ``static/docs/``, licences beside them
(see ``static/docs/README.md``), so the docs work on a host without internet access.

Each page's one inline script (FastAPI's initialiser) is allowed by its SHA-256 hash in
the page's Content-Security-Policy; nothing else inline runs, nothing loads from
another origin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_PATH = "/static/docs"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def page_policy(html: str, *, styles_inline: bool, workers: bool = False) -> str:
    """The Content-Security-Policy of a docs page: its own origin for scripts, styles,
    images and the OpenAPI document, plus the hash of each inline script of ``html``.

    Both UIs set ``style`` attributes and inject ``<style>`` elements from their
    bundles at run time, which CSP can only allow all together (``'unsafe-inline'``
    for styles; scripts stay hash-only). ReDoc runs its search index in a worker built
    from a ``blob:`` URL.
    """
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    directives = [
        "default-src 'none'",
        f"script-src 'self' {hashes}".rstrip(),
        "style-src 'self'" + (" 'unsafe-inline'" if styles_inline else ""),
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
    if workers:
        directives.append("worker-src 'self' blob:")
    return "; ".join(directives)


def install_docs(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Serve ``/docs`` and ``/redoc`` on ``app`` (create it with ``docs_url=None,
    redoc_url=None``) and the assets under :data:`STATIC_PATH`."""
    static = resources.files("opsdesk.api") / "static" / "docs"
    app.mount(STATIC_PATH, StaticFiles(directory=str(static)), name="docs-static")

    swagger_page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_PATH}/favicon-32x32.png",
        oauth2_redirect_url=None,  # bearer tokens only: no OAuth2 flow to return to
    )
    redoc_page = get_redoc_html(
        openapi_url=openapi_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{STATIC_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{STATIC_PATH}/favicon-32x32.png",
        with_google_fonts=False,
    )
    swagger, redoc = bytes(swagger_page.body).decode(), bytes(redoc_page.body).decode()
    pages = {
        "/docs": (swagger, page_policy(swagger, styles_inline=True)),
        "/redoc": (redoc, page_policy(redoc, styles_inline=True, workers=True)),
    }
    for path, (html, policy) in pages.items():
        app.add_api_route(path, _page(html, policy), include_in_schema=False, methods=["GET"])


def _page(html: str, policy: str) -> Callable[[], Awaitable[HTMLResponse]]:
    async def page() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": policy})

    return page
