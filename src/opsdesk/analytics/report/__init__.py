"""Reports of a diagnosis: one self-contained HTML page and the JSON document.

>>> write_reports(diagnosis, Path("friction.html"), Path("friction.json"))  # doctest: +SKIP
"""

from __future__ import annotations

from opsdesk.analytics.report.html import render_html
from opsdesk.analytics.report.output import json_bytes, write_reports

__all__ = ["json_bytes", "render_html", "write_reports"]
