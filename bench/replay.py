"""Replay speed: how fast `opsdesk verify` folds the event log into fresh projections."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

from opsdesk.domain.state import Projection
from opsdesk.store.db import Database
from opsdesk.store.verify import iter_events, replay, verify


@dataclass
class ReplayResult:
    events: int
    fold_seconds: float  # the projection fold alone, events already in memory
    read_fold_seconds: float  # reading the log from the database and folding it
    verify_seconds: float  # the whole verify: replay, load the tables, compare

    @property
    def fold_rate(self) -> float:
        return self.events / self.fold_seconds

    @property
    def read_fold_rate(self) -> float:
        return self.events / self.read_fold_seconds


def measure(db: Database) -> ReplayResult:
    with db.read() as conn:
        events = list(iter_events(conn))
    gc.disable()  # as replay() does
    start = time.perf_counter()
    projection = Projection(track=False)
    for event in events:
        projection.apply(event)
    fold = time.perf_counter() - start
    gc.enable()
    del events
    start = time.perf_counter()
    with db.read() as conn:
        result = replay(conn)
    read_fold = time.perf_counter() - start
    start = time.perf_counter()
    report = verify(db)
    full = time.perf_counter() - start
    assert report.ok, report.differences[:5]
    return ReplayResult(result.events, fold, read_fold, full)
