"""The process views (directly-follows graph, variants, handover of work) on a log with
hand-computed answers, and on random logs against a plain-Python reading of the rows."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsdesk.analytics import process
from opsdesk.analytics.schema import CASE_EVENTS
from tests.analytics.engine.builder import T0, Log


def test_dfg_variants_and_handover(tmp_path: Path) -> None:
    log = Log()
    # two cases take the same path; a third bounces A -> B -> A; same-instant events
    # keep their log order
    log.case("c1").message(1).solve(2)
    log.case("c2", start=5).message(1).solve(2)
    log.case("c3").transfer(1, "B").transfer(2, "A").solve(2)
    path = tmp_path / "log.parquet"
    pq.write_table(log.table(), path)
    views = process.mine(path)

    assert views.directly_follows == [
        ("message.added", "ticket.status_changed", 2),
        ("ticket.created", "message.added", 2),
        ("ticket.created", "ticket.transferred", 1),
        ("ticket.transferred", "ticket.status_changed", 1),
        ("ticket.transferred", "ticket.transferred", 1),
    ]
    assert views.variants == [
        ("ticket.created > message.added > ticket.status_changed", 2),
        ("ticket.created > ticket.transferred > ticket.transferred > ticket.status_changed", 1),
    ]
    assert views.team_handover == [("A", "B", 1), ("B", "A", 1)]
    # an Arrow table gives the same; so does a connection of the caller's, left clean
    assert process.mine(log.table()) == views
    con = process.connection()
    try:
        assert process.mine(path, con=con) == views
        assert process.mine(log.table(), con=con) == views
        views_left = "SELECT count(*) FROM duckdb_views() WHERE view_name = 'case_events'"
        assert con.execute(views_left).fetchone() == (0,)
    finally:
        con.close()


def test_an_empty_log_and_a_missing_file(tmp_path: Path) -> None:
    assert process.mine(CASE_EVENTS.empty_table()) == process.ProcessViews([], [], [])
    with pytest.raises(FileNotFoundError):
        process.mine(tmp_path / "nope.parquet")


def reference(rows: list[dict[str, Any]]) -> process.ProcessViews:
    """The three views computed row by row in Python."""
    traces: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (r["case_id"], r["at"], r["seq"])):
        if not row["type"].startswith("sla."):
            traces.setdefault(row["case_id"], []).append(row)
    dfg: Counter[tuple[str, str]] = Counter()
    variants: Counter[str] = Counter()
    handover: Counter[tuple[str, str]] = Counter()
    for trace in traces.values():
        steps = [r["activity"] or r["type"] for r in trace]
        dfg.update(itertools.pairwise(steps))
        variants[" > ".join(steps)] += 1
        teams = [r["team"] for r in trace if r["team"] is not None]
        handover.update((a, b) for a, b in itertools.pairwise(teams) if a != b)
    return process.ProcessViews(
        sorted(((a, b, n) for (a, b), n in dfg.items()), key=lambda r: (-r[2], r[0], r[1])),
        sorted(variants.items(), key=lambda r: (-r[1], r[0])),
        sorted(((a, b, n) for (a, b), n in handover.items()), key=lambda r: (-r[2], r[0], r[1])),
    )


event = st.fixed_dictionaries(
    {
        "case_id": st.sampled_from(("c1", "c2", "c3", "c4")),
        "minute": st.integers(0, 5),  # few instants: many ties, broken by seq
        "type": st.sampled_from(
            ("ticket.created", "message.added", "ticket.transferred", "sla.warning")
        ),
        "activity": st.sampled_from((None, "a", "b")),
        "team": st.sampled_from((None, "A", "B", "C")),
    }
)


@settings(
    max_examples=int(os.environ.get("OPSDESK_HYPOTHESIS_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(event, max_size=40), st.randoms(use_true_random=False))
def test_the_views_match_a_row_by_row_reading(events: list[dict[str, Any]], rnd: Any) -> None:
    from datetime import timedelta

    rows = []
    seqs = list(range(1, len(events) + 1))
    rnd.shuffle(seqs)  # the log's order is not the file's order
    for seq, e in zip(seqs, events, strict=True):
        row: dict[str, Any] = dict.fromkeys(CASE_EVENTS.names)
        row.update(e, seq=seq, at=T0 + timedelta(minutes=e.pop("minute")))
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=CASE_EVENTS)
    assert process.mine(table) == reference(rows)
