"""Charts as inline SVG, drawn with matplotlib's object API (no pyplot, no GUI backend).

Text stays text (``svg.fonttype: none``): the charts are smaller, selectable and read
by screen readers, and need no embedded fonts. matplotlib escapes that text itself; the
titles added here are escaped with markupsafe, so the SVG is the only markup the report
trusts.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import matplotlib
from markupsafe import Markup, escape
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

from opsdesk.analytics.report.format import fmt_float
from opsdesk.analytics.results import HOURS_PER_TOUCH

BLUE = "#2563eb"
ORANGE = "#ea580c"
GREY = "#6b7280"
#: longest axis label before it is cut with an ellipsis
LABEL_CHARS = 48
HEATMAP_LABEL_CHARS = 28

_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial", "sans-serif"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
}
_SVG_START = re.compile(r"<svg\b[^>]*>", re.S)


def label(text: Any, limit: int = LABEL_CHARS) -> str:
    """A data value as a safe axis label: short, and ``$`` never read as mathtext."""
    value = "(none)" if text is None else str(text)
    if len(value) > limit:
        value = value[: limit - 1] + "\u2026"
    return value.replace("\\", "\\\\").replace("$", r"\$")


def to_svg(fig: Figure, chart_id: str, title: str) -> Markup:
    """The figure as an inline ``<svg>`` with an accessible title (no XML prolog)."""
    buffer = io.StringIO()
    # a per-chart salt keeps clip-path ids unique among the charts of one page
    with matplotlib.rc_context({**_RC, "svg.hashsalt": chart_id}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    start = _SVG_START.search(svg)
    if start is None:  # pragma: no cover - matplotlib always writes one
        raise ValueError("matplotlib wrote no <svg> element")
    title_id = f"{chart_id}-title"
    opening = start.group(0)[:-1] + f' role="img" aria-labelledby="{title_id}">'
    body = svg[start.end() :]
    # matplotlib's own <metadata> block names the tool and nothing the reader needs
    body = re.sub(r"<metadata>.*?</metadata>\s*", "", body, count=1, flags=re.S)
    title_el = f'<title id="{title_id}">{escape(title)}</title>'
    return Markup(opening + title_el + body)  # noqa: S704 - matplotlib output, escaped text


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def cost_bars(labels: Sequence[str], costs: Sequence[float], chart_id: str, title: str) -> Markup:
    """Horizontal bars, highest first, the value written at each bar's end."""
    n = len(labels)
    with matplotlib.rc_context(_RC):
        fig = _figure(8.0, max(1.6, 0.28 * n + 0.8))
        ax = fig.add_subplot()
        positions = list(range(n))
        ax.barh(positions, costs, color=BLUE, height=0.7)
        ax.set_yticks(positions, [label(x) for x in labels])
        ax.invert_yaxis()
        ax.set_xlabel(f"cost (extra hours + {HOURS_PER_TOUCH} h per extra touch)")
        top = max(costs, default=0.0)
        for y, value in zip(positions, costs, strict=True):
            ax.text(value + top * 0.01, y, fmt_float(value), va="center", fontsize=8, color=GREY)
        ax.set_xlim(0, top * 1.12 if top > 0 else 1)
        ax.grid(axis="x", color="#e5e7eb", linewidth=0.6)
        ax.set_axisbelow(True)
    return to_svg(fig, chart_id, title)


def heatmap(
    teams: Sequence[str], matrix: Sequence[Sequence[int]], chart_id: str, title: str
) -> Markup:
    """From-team rows x to-team columns, darker = more handoffs, counts in the cells."""
    n = len(teams)
    size = max(3.5, 0.42 * n + 2.0)
    with matplotlib.rc_context(_RC):
        fig = _figure(size + 1.0, size)
        ax = fig.add_subplot()
        # vector cells (imshow would embed a PNG): crisp at any zoom and in print
        # a square-root scale keeps the smaller flows visible beside one dominant flow
        image = ax.pcolormesh(
            matrix,
            cmap="Blues",
            norm=PowerNorm(gamma=0.5, vmin=0),
            edgecolors="white",
            linewidth=0.5,
        )
        ax.set_aspect("equal")
        ax.set_xlim(0, n)
        ax.set_ylim(n, 0)
        names = [label(t, HEATMAP_LABEL_CHARS) for t in teams]
        centres = [i + 0.5 for i in range(n)]
        ax.set_xticks(centres, names, rotation=60, ha="right", rotation_mode="anchor")
        ax.set_yticks(centres, names)
        ax.set_xlabel("to team")
        ax.set_ylabel("from team")
        ax.spines[:].set_visible(False)
        peak = max((v for row in matrix for v in row), default=0)
        if n <= 25:
            for i, row in enumerate(matrix):
                for j, value in enumerate(row):
                    if value:
                        color = "white" if value > peak * 0.3 else "#111827"
                        ax.text(
                            j + 0.5,
                            i + 0.5,
                            f"{value:,}",
                            ha="center",
                            va="center",
                            fontsize=7,
                            color=color,
                        )
        bar = fig.colorbar(image, ax=ax, shrink=0.6, label="handoffs")
        if bar.solids is not None:
            bar.solids.set_rasterized(False)  # vector, not an embedded PNG
    return to_svg(fig, chart_id, title)


def weekly_lines(
    weeks: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    chart_id: str,
    title: str,
) -> Markup:
    """One line per series over the weeks (gaps where a value is missing)."""
    n = len(weeks)
    colors = (BLUE, ORANGE, GREY)
    with matplotlib.rc_context(_RC):
        fig = _figure(8.0, 3.2)
        ax = fig.add_subplot()
        x = list(range(n))
        for (name, values), color in zip(series, colors, strict=False):
            ys = [float("nan") if v is None else v for v in values]
            ax.plot(
                x,
                ys,
                marker="o" if n <= 30 else "",
                markersize=3,
                color=color,
                label=label(name),
                linewidth=1.6,
            )
        step = max(1, -(-n // 12))
        ticks = x[::step]
        ax.set_xticks(
            ticks, [label(weeks[i]) for i in ticks], rotation=30, ha="right", rotation_mode="anchor"
        )
        ax.set_ylabel("cases")
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", color="#e5e7eb", linewidth=0.6)
        ax.legend(frameon=False, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=len(series))
    return to_svg(fig, chart_id, title)


def grouped_bars(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    unit: str,
    chart_id: str,
    title: str,
) -> Markup:
    """Horizontal bars per label, one bar per series side by side."""
    n = len(labels)
    k = max(1, len(series))
    height = 0.8 / k
    colors = (BLUE, ORANGE, GREY)
    with matplotlib.rc_context(_RC):
        fig = _figure(8.0, max(1.8, 0.36 * n + 1.0))
        ax = fig.add_subplot()
        for s, ((name, values), color) in enumerate(zip(series, colors, strict=False)):
            ys = [i - 0.4 + height * (s + 0.5) for i in range(n)]
            ax.barh(
                ys,
                [0.0 if v is None else v for v in values],
                height=height * 0.95,
                color=color,
                label=label(name),
            )
        ax.set_yticks(range(n), [label(x) for x in labels])
        ax.invert_yaxis()
        ax.set_xlabel(unit)
        ax.grid(axis="x", color="#e5e7eb", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(frameon=False, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=k)
    return to_svg(fig, chart_id, title)
