"""Reports of a diagnosis: one self-contained HTML page and the JSON document.

>>> write_reports(diagnosis, Path("friction.html"), Path("friction.json"))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["json_bytes", "render_html", "write_reports"]


def __getattr__(name: str) -> Any:
    # loaded on first use: the HTML side pulls in matplotlib (about a second cold), which
    # the terminal summary and the JSON report never need
    if name == "render_html":
        from opsdesk.analytics.report.html import render_html

        return render_html
    if name in ("json_bytes", "write_reports"):
        from opsdesk.analytics.report import output

        return getattr(output, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
