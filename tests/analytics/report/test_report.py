"""The HTML and JSON reports of a hand-built diagnosis."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

from opsdesk.analytics.report import json_bytes, render_html, write_reports
from opsdesk.analytics.report.html import HEATMAP_TEAMS, handoff_view
from opsdesk.analytics.results import Diagnosis, Finding, KpiTable
from tests.analytics.report.builders import EVIL, make_diagnosis


class _Collector(HTMLParser):
    """Every tag with its attributes, and the text of <style> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def assert_self_contained(html: str) -> None:
    doc = parse(html)
    for tag, attrs in doc.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed", "img"), tag
        for name in ("src", "href", "xlink:href", "action", "data", "poster", "srcset"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "data:", "javascript:")), (
                tag,
                name,
                value,
            )
        style = (attrs.get("style") or "").lower()
        assert "url(" not in style and "@import" not in style
    for css in doc.styles:
        assert "@import" not in css.lower()
        assert "url(" not in css.lower()
    # nothing anywhere that fetches: attributes, CSS or SVG
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", html, re.I)
    assert "@import" not in html


def test_report_has_every_part(diagnosis: Diagnosis) -> None:
    html = render_html(diagnosis)
    assert html.startswith("<!DOCTYPE html>")
    assert_self_contained(html)

    # header and summary
    assert "<title>Friction diagnostic: incidents.csv</title>" in html
    assert '>1,234</span> <span class="label">cases' in html
    assert '>56,789</span> <span class="label">events' in html
    assert "2026-01-05 08:00 UTC to 2026-02-01 17:30 UTC (27 days)" in html

    # the three recommendations, in order, inside the fix-first block
    block = html[html.index('id="fix-first"') : html.index('id="findings"')]
    positions = [block.index(sentence) for sentence in diagnosis.fix_first]
    assert positions == sorted(positions)

    # the ranked findings table, one row per finding
    table = html[html.index('<table class="findings">') : html.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    assert len(cells) == len(diagnosis.findings)
    assert cells[0] == [
        '<a href="#finding-1">1</a>',
        "Ping pong",
        "category Category 0",
        "100",
        "25.0%",
        "1,000",
        "300.0",
        "1,075",
        "same category",
    ]
    assert cells[1][1:] == [
        "Handoff chain",
        "category Category 1",
        "99",
        "25.0%",
        "500.0",
        "150.0",
        "537.5",
        "same category",
    ]
    headers = re.findall(r"<th scope=\"col\"[^>]*>(.*?)</th>", table)
    assert headers[5:] == ["Extra elapsed hours", "Extra touches", "Cost (h)", "Priced against"]

    # charts: cost bars, heatmap, weekly lines, resolution bars, all titled SVG
    svgs = re.findall(r"<svg\b[^>]*>\s*<title id=\"([^\"]+)\">([^<]+)</title>", html)
    assert [chart for chart, _ in svgs] == [
        "chart-cost-title",
        "chart-handoffs-title",
        "chart-weekly-title",
        "chart-resolution-title",
    ]
    assert all('role="img"' in tag for tag in re.findall(r"<svg\b[^>]*>", html))
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html
    heatmap = html[html.index('id="chart-handoffs-title"') :]
    heatmap = heatmap[: heatmap.index("</svg>")]
    for team in ("team 00", "team 05"):
        assert team in heatmap

    # every finding has its section with explanation, details and example cases
    for rank, finding in enumerate(diagnosis.findings, start=1):
        section = html[html.index(f'<article class="finding" id="finding-{rank}"') :]
        section = section[: section.index("</article>")]
        assert finding.explanation in section
        assert f"Priced {finding.baseline_text}." in section
        assert "extra elapsed hours" in section and "extra touches" in section
        assert "<dt>Median transfers</dt><dd>3</dd>" in section
        assert "<dt>Top</dt><dd>team 00 &lt;-&gt; team 01 (16 cases)</dd>" in section
        assert "<dt>Exception rate</dt><dd>50.0%</dd>" in section
        for case in finding.examples:
            assert f"<td><code>{case}</code></td>" in section

    # top flows and KPI tables with real headers
    assert "<caption>Top 10 flows</caption>" in html
    for header in ("Resolution median (h)", "Resolution p90 (h)", "SLA attainment", "FCR rate"):
        assert f'<th scope="col" class="num">{header}</th>' in html
    for title in (
        "Overall",
        "By request type (category)",
        "By team",
        "By channel",
        "By priority",
        "By week (of creation)",
        "Backlog at the end of each week",
    ):
        assert f">{title}</h3>" in html
    assert "Backlog at the end of each day" not in html  # in the JSON only
    assert '<th scope="row">Category 3</th>' in html
    assert '<th scope="row">2026-W02</th>' in html
    assert '<td class="num">90.0%</td>' in html  # sla_attainment as a percentage
    assert '<td class="num">612</td>' in html  # aht_seconds
    overall = html[html.index('id="kpi-overall"') :]
    overall = overall[: overall.index("</table>")]
    assert '<td class="num">1,234</td>' in overall and ">all<" not in overall


def test_user_data_is_escaped(diagnosis: Diagnosis) -> None:
    evil = Finding(
        kind=EVIL,
        segment=f"team={EVIL}",
        cases=3,
        share=0.5,
        extra_hours=5000.0,
        extra_touches=1.0,
        examples=[EVIL, "$x$ \\ & 'q'"],
        explanation=f"Explains {EVIL}",
        details={EVIL: EVIL},
    )
    diagnosis = replace(
        diagnosis,
        summary=replace(diagnosis.summary, source=EVIL),
        findings=[evil, *diagnosis.findings],
        handoffs=[*diagnosis.handoffs, {"from_team": EVIL, "to_team": "$a$", "count": 999}],
        kpis=[*diagnosis.kpis[:1], KpiTable("category", [{"category": EVIL, "cases": 5}])],
        fix_first=[f"Fix {EVIL}", "b", "c"],
    )
    html = render_html(diagnosis)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "team=&lt;script&gt;" in html
    assert_self_contained(html)
    assert parse(html).tags  # still well-formed enough to parse


def test_json_report(diagnosis: Diagnosis, tmp_path: Path) -> None:
    html_path, json_path = tmp_path / "out" / "report.html", tmp_path / "out" / "report.json"
    write_reports(diagnosis, html_path, json_path)
    assert html_path.read_text(encoding="utf-8") == render_html(diagnosis)
    data = json.loads(json_path.read_bytes())
    assert data == json.loads(json_bytes(diagnosis))
    assert data["summary"]["cases"] == 1234
    assert data["summary"]["events"] == 56789
    assert data["summary"]["teams"] == 6
    assert data["summary"]["first_event"] == "2026-01-05T08:00:00+00:00"
    assert [t["dimension"] for t in data["kpis"]] == [
        "overall",
        "category",
        "team",
        "channel",
        "priority",
        "week",
        "backlog_week",
        "backlog_day",
    ]
    assert data["kpis"][5]["rows"][0]["week"] == "2026-W02"
    first = data["findings"][0]
    assert {k: first[k] for k in ("kind", "segment", "cases", "share", "extra_hours")} == {
        "kind": "ping_pong",
        "segment": "category=Category 0",
        "cases": 100,
        "share": 0.25,
        "extra_hours": 1000.0,
    }
    assert first["examples"] == [f"CASE-0-{k}" for k in range(5)]
    assert first["cost"] == 1075.0 and first["extra_touches"] == 300.0
    assert data["fix_first"] == diagnosis.fix_first
    assert data["handoffs"][0] == {"from_team": "team 00", "to_team": "team 01", "count": 10}
    assert sorted(p.name for p in html_path.parent.iterdir()) == ["report.html", "report.json"]


def test_write_only_one_report(diagnosis: Diagnosis, tmp_path: Path) -> None:
    write_reports(diagnosis, None, tmp_path / "d.json")
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]


def test_empty_diagnosis_renders(diagnosis: Diagnosis) -> None:
    empty = Diagnosis(
        summary=replace(diagnosis.summary, cases=0, events=0, first_event=None, last_event=None),
        kpis=[],
        findings=[],
        handoffs=[],
        fix_first=[],
    )
    html = render_html(empty)
    assert_self_contained(html)
    assert "No friction findings in this log." in html
    assert "No handoffs between teams in this log." in html
    assert "<svg" not in html
    assert json.loads(json_bytes(empty))["findings"] == []


def test_handoff_map_keeps_the_busiest_teams() -> None:
    handoffs = [
        {"from_team": f"t{i}", "to_team": f"t{(i + 1) % 60}", "count": i + 1} for i in range(60)
    ]
    view = handoff_view(handoffs)
    assert (view.teams, view.shown) == (60, HEATMAP_TEAMS)
    assert view.total == sum(range(1, 61))
    assert [f.count for f in view.flows] == list(range(60, 50, -1))
    assert (view.flows[0].from_team, view.flows[0].to_team) == ("t59", "t0")


def test_big_diagnosis_renders(tmp_path: Path) -> None:
    big = make_diagnosis(teams=60, findings=200, categories=80, weeks=60)
    html = render_html(big)
    assert_self_contained(html)
    assert html.count('<article class="finding"') == 200
    assert "The map shows the 20 teams with the most handoffs" in html
    assert "the top 25 of 200; the table lists all" in html
    assert "The 25 busiest of 80 rows by Cases." in html
    assert "The latest 25 of 60 weeks; the JSON report has all." in html
    weeks = html[html.index('id="kpi-week"') :]
    weeks = weeks[: weeks.index("</table>")]
    assert '<th scope="row">2027-W08</th>' in weeks and "2026-W02" not in weeks
    kpi_team = html[html.index('id="kpi-team"') :]
    kpi_team = kpi_team[: kpi_team.index("</table>")]
    assert kpi_team.count('<th scope="row">') == 25
    write_reports(big, tmp_path / "big.html", tmp_path / "big.json")
    assert len(json.loads((tmp_path / "big.json").read_bytes())["findings"]) == 200


def test_charts_find_other_kpi_names(diagnosis: Diagnosis) -> None:
    """p50 instead of median, and the backlog as a column of the week table."""
    rows = [
        {
            "category": "Billing",
            "cases": 9,
            "resolution_p50_hours": 3.0,
            "resolution_p90_hours": 9.0,
        }
    ]
    weeks = [{"week": f"2026-W0{i}", "cases": 10 + i, "backlog": 5 - i} for i in range(1, 4)]
    variant = replace(diagnosis, kpis=[KpiTable("category", rows), KpiTable("week", weeks)])
    html = render_html(variant)
    assert 'id="chart-weekly-title">Weekly volume and backlog: cases created and open at' in html
    assert 'id="chart-resolution-title">Resolution time p50 and p90 by request type' in html
    assert "No KPI tables" not in html


def test_no_charts_without_their_kpis(diagnosis: Diagnosis) -> None:
    variant = replace(diagnosis, kpis=[KpiTable("team", [{"team": "a", "cases": 1}])])
    html = render_html(variant)
    assert "chart-weekly" not in html and "chart-resolution" not in html
    assert '<th scope="row">a</th>' in html
