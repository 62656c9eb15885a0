"""The process views (directly-follows graph, variants, handover of work) on a log with
hand-computed answers."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from opsdesk.analytics import process
from tests.analytics.engine.builder import Log


def test_dfg_variants_and_handover(tmp_path: Path) -> None:
    log = Log()
    # two cases take the same path; a third bounces A -> B -> A; same-instant events
    # keep their log order
    log.case("c1").message(1).solve(2)
    log.case("c2", start=5).message(1).solve(2)
    log.case("c3").transfer(1, "B").transfer(2, "A").solve(2)
    path = tmp_path / "log.parquet"
    pq.write_table(log.table(), path)
    con = process.connect(path)

    dfg = {(s, t): n for s, t, n in process.directly_follows(con)}
    assert dfg == {
        ("ticket.created", "message.added"): 2,
        ("message.added", "ticket.status_changed"): 2,
        ("ticket.created", "ticket.transferred"): 1,
        ("ticket.transferred", "ticket.transferred"): 1,
        ("ticket.transferred", "ticket.status_changed"): 1,
    }
    assert process.variants(con) == [
        ("ticket.created > message.added > ticket.status_changed", 2),
        ("ticket.created > ticket.transferred > ticket.transferred > ticket.status_changed", 1),
    ]
    assert sorted(process.team_handover(con)) == [("A", "B", 1), ("B", "A", 1)]
