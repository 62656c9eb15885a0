"""/docs and /redoc are served from packaged assets: no external URL, assets answer with
the right type, and (in a real browser with the network to anywhere else cut) both UIs
render the API under their Content-Security-Policy without a violation."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from opsdesk.api import create_app
from opsdesk.settings import Settings
from opsdesk.store.db import Database

CHROMIUM = "/usr/bin/chromium"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_URL = re.compile(r"""(?:src|href|spec-url|url)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


@pytest.fixture
def docs_app(sqlite_db: Database) -> FastAPI:
    return create_app(Settings(database_url=sqlite_db.url), db=sqlite_db)


@pytest.fixture
def docs_client(docs_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(docs_app) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_their_own_origin(docs_client: TestClient, page: str) -> None:
    response = docs_client.get(page)
    assert response.status_code == 200
    html = response.text
    assert (
        "http://" not in html
        and "https://" not in html
        and "//" not in html.replace("<!--", "").replace("-->", "")
    ), html
    urls = _URL.findall(html)
    assert urls, html
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert "'unsafe-eval'" not in policy


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_every_asset_a_docs_page_names_answers_with_its_type(
    docs_client: TestClient, page: str
) -> None:
    types = {
        ".js": "text/javascript",
        ".css": "text/css",
        ".png": "image/png",
        ".json": "application/json",
    }
    for url in _URL.findall(docs_client.get(page).text):
        response = docs_client.get(url)
        assert response.status_code == 200, url
        expected = types[Path(url).suffix]
        assert response.headers["content-type"].startswith(expected), (url, response.headers)
        assert response.headers["x-content-type-options"] == "nosniff"


def test_an_unknown_asset_is_a_problem_not_a_directory_listing(docs_client: TestClient) -> None:
    for path in ("/static/docs/nope.js", "/static/docs/", "/static/docs/../../app.py"):
        response = docs_client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")


def test_the_licences_of_the_vendored_assets_are_shipped() -> None:
    from importlib import resources

    folder = resources.files("opsdesk.api") / "static" / "docs"
    names = {entry.name for entry in folder.iterdir()}
    assert {"swagger-ui.LICENSE", "swagger-ui.NOTICE", "redoc.LICENSE", "README.md"} <= names
    assert "Apache License" in (folder / "swagger-ui.LICENSE").read_text()
    assert "MIT" in (folder / "redoc.LICENSE").read_text()


# --- in a browser --------------------------------------------------------------------


def _browser_or_skip() -> None:
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is not installed (`make install` installs it with apt-get)"
    elif not _has_playwright():
        missing = "playwright is not installed (pip install -e '.[dev]')"
    if missing is None:
        return
    if os.environ.get("OPSDESK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{missing}; OPSDESK_REQUIRE_BROWSER=1 requires it", pytrace=False)
    pytest.skip(missing)


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(docs_app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a free port, in a thread."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(docs_app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):  # wait for the socket, not for a duration
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


_WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
    e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.mark.parametrize(
    ("page", "rendered"),
    [
        ("/docs", ".swagger-ui .info .title"),
        ("/redoc", "h1"),
    ],
)
def test_the_docs_render_offline_under_their_policy(served: str, page: str, rendered: str) -> None:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    elsewhere: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context()

            def only_this_server(route, request) -> None:  # type: ignore[no-untyped-def]
                if request.url.startswith(served) or request.url.startswith(("blob:", "data:")):
                    route.continue_()
                else:
                    elsewhere.append(request.url)
                    route.abort()

            context.route("**/*", only_this_server)
            context.add_init_script(_WATCH_CSP)
            tab = context.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            tab.goto(served + page)
            title = tab.wait_for_selector(rendered, timeout=30_000)
            assert title is not None
            assert "opsdesk" in title.inner_text()
            violations = tab.evaluate("window.__csp")
        finally:
            browser.close()
    assert elsewhere == []
    # ReDoc's sidebar shows its vendor's logo from their CDN (no option turns it off): the
    # policy blocks it before any request leaves, and that is the only thing it blocks
    assert [v for v in violations if v != f"img-src {REDOC_LOGO}"] == []
    assert errors == []
