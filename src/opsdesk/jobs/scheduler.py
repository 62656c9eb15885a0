"""Sweeping the outbox on a timer: a daemon thread inside the server (the embedded
SQLite default) or the loop of ``opsdesk worker`` (PostgreSQL, separate processes)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from opsdesk.jobs.outbox import MAX_ATTEMPTS, SweepResult, run_due
from opsdesk.store.db import Database

log = logging.getLogger("opsdesk.jobs")


def sweep_until_stopped(
    db: Database,
    stop: threading.Event,
    *,
    interval: float,
    batch: int = 500,
    worker: str = "worker",
    max_attempts: int = MAX_ATTEMPTS,
    on_sweep: Callable[[SweepResult], None] | None = None,
) -> int:
    """Sweep, then wait ``interval`` seconds, until ``stop`` is set (a sweep in progress
    finishes its batch first). A sweep that raises (database gone, say) is logged and
    tried again at the next interval; the loop never dies of it. Returns the sweeps run.

    >>> stop = threading.Event()  # doctest: +SKIP
    >>> sweep_until_stopped(db, stop, interval=5.0, worker="worker-1")  # doctest: +SKIP
    """
    sweeps = 0
    while not stop.is_set():
        try:
            result = run_due(db, batch=batch, worker=worker, max_attempts=max_attempts, stop=stop)
        except Exception:
            log.exception("%s: the jobs sweep failed; trying again in %.1f s", worker, interval)
        else:
            sweeps += 1
            if on_sweep is not None:
                try:
                    on_sweep(result)
                except Exception:
                    log.exception("%s: reporting a sweep failed", worker)
        stop.wait(interval)
    return sweeps


class InProcessScheduler:
    """Sweep the outbox every ``interval`` seconds from a daemon thread.

    >>> scheduler = InProcessScheduler(db, interval=5.0)  # doctest: +SKIP
    >>> scheduler.start()  # doctest: +SKIP
    >>> scheduler.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        db: Database,
        interval: float = 5.0,
        *,
        batch: int = 500,
        max_attempts: int = MAX_ATTEMPTS,
        name: str = "in-process",
    ) -> None:
        if interval <= 0:
            raise ValueError("the jobs interval must be positive")
        self.db = db
        self.interval = interval
        self.batch = batch
        self.max_attempts = max_attempts
        self.name = name
        self.sweeps = 0
        self.last: SweepResult | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="opsdesk-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop and wait for the batch in hand to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _record(self, result: SweepResult) -> None:
        self.sweeps += 1
        self.last = result
        if result.kinds():
            log.info("%s: %s", self.name, result.summary())

    def _run(self) -> None:
        sweep_until_stopped(
            self.db,
            self._stop,
            interval=self.interval,
            batch=self.batch,
            worker=self.name,
            max_attempts=self.max_attempts,
            on_sweep=self._record,
        )
