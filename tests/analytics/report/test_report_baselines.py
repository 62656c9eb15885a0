"""Baselines, units, unavailable KPIs and unmeasurable kinds as the reports and the CLI
show them, from diagnoses the engine computes on small logs."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from opsdesk.analytics.engine import diagnose
from opsdesk.analytics.report import json_bytes, render_html
from opsdesk.cli import app
from tests.analytics.engine.builder import Log
from tests.analytics.engine.test_baselines import billing_and_shipping


def section(html: str, start: str, end: str) -> str:
    part = html[html.index(start) :]
    return part[: part.index(end)]


def test_the_report_names_each_findings_baseline_and_units() -> None:
    d = diagnose(billing_and_shipping().table())
    billing = d.findings[0]
    assert (billing.segment, billing.baseline) == ("category=Billing", "whole_log")
    html = render_html(d)
    table = section(html, '<table class="findings">', "</table>")
    first = re.findall(r"<td[^>]*>(.*?)</td>", re.findall(r"<tr>(.*?)</tr>", table, re.S)[1])
    assert first[2] == "category Billing" and first[-1] == "whole log"
    article = section(html, 'id="finding-1"', "</article>")
    assert "2,820 extra elapsed hours, 6.0 extra touches" in article
    assert f"Priced {billing.baseline_text}." in article
    assert "the unaffected cases of the whole log (10 cases" in article
    assert "since every case in Billing has the pattern" in article
    data = json.loads(json_bytes(d))
    assert data["findings"][0]["baseline"] == "whole_log"
    assert data["findings"][0]["hours_unit"] == "extra elapsed hours"
    assert "0.25" in data["units"]["cost"]


def no_messages() -> Log:
    """Ping-pong and silent pending, but no message, csat, handling time or exception."""
    log = Log()
    for i in range(5):
        log.case(f"ok{i}", category="Billing").solve(10)
        c = log.case(f"pp{i}", category="Billing").transfer(1, "B", "b1")
        c.transfer(2, "A", "a1").status(3, "pending").status(6, "open").solve(30)
    return log


def test_the_report_marks_unavailable_kpis_and_unmeasurable_kinds() -> None:
    d = diagnose(no_messages().table())
    html = render_html(d)
    kpis = section(html, 'id="kpis"', "</section>")
    unavailable = section(kpis, 'id="kpi-unavailable"', "</ul>")
    assert (
        "<strong>First response median (h), First response p90 (h)</strong>: the log has no "
        "public replies to the customer" in unavailable
    )
    assert "<strong>CSAT mean, CSAT responses</strong>" in unavailable
    assert "<strong>AHT (s)</strong>: the log records no handling time" in unavailable
    tables = kpis[kpis.index('id="kpi-overall"') :]
    assert "First response" not in tables and "CSAT" not in tables and "AHT" not in tables
    assert "Resolution median (h)" in tables
    findings = section(html, 'id="findings"', "</section>")
    missing = section(findings, 'id="not-measurable"', "</ul>")
    assert "<strong>Pending misuse</strong>: the log has no customer messages" in missing
    assert "Pending misuse:" not in findings  # no finding of the kind
    data = json.loads(json_bytes(d))
    assert "pending_misuse" in data["not_measurable"]
    assert "first_response_median_h" not in data["kpis"][0]["rows"][0]


def test_cli_shows_units_baselines_and_what_the_log_cannot_support(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    with log.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "when", "state", "group", "who", "kind"])
        for i in range(5):
            out.writerow([f"ok{i}", "2026-01-05 08:00", "open", "A", "a1", "Billing"])
            out.writerow([f"ok{i}", "2026-01-05 10:00", "solved", "A", "a1", "Billing"])
            for hour, group in (("08", "A"), ("09", "B"), ("10", "A")):
                out.writerow([f"pp{i}", f"2026-01-05 {hour}:00", "open", group, "a1", "Billing"])
            out.writerow([f"pp{i}", "2026-01-07 10:00", "solved", "A", "a1", "Billing"])
    states = tmp_path / "states.csv"
    states.write_text("source,status\nopen,open\nsolved,solved\n")
    result = CliRunner().invoke(
        app,
        [
            "diagnose",
            str(log),
            "--case",
            "id",
            "--time",
            "when",
            "--status",
            "state",
            "--status-map",
            str(states),
            "--team",
            "group",
            "--agent",
            "who",
            "--category",
            "kind",
        ],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    output = result.output
    assert re.search(
        r"First response median \(h\)\s*│ unavailable: the log has no public replies", output
    )
    assert "extra elapsed h" in output and "priced against" in output
    assert "cost in hours = extra elapsed hours + 0.25 h per extra touch" in output
    row = next(line for line in output.splitlines() if "Ping pong" in line)
    assert "category Billing" in row and "same category" in row
    assert "Not measurable on this log: pending misuse: the log has no customer messages" in output
    assert "1. Stop the ping-pong between A and B on Billing: 5 cases (50%)" in output
