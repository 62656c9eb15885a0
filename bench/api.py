"""Ticket writes per second through the HTTP API, with 8 concurrent clients (issue #10).

`opsdesk serve` runs in its own process on a fresh SQLite database (the example model,
an agent of billing with a token); 8 client threads, each with its own keep-alive
connection, alternate two writes: open a ticket for a customer given by e-mail (triaged
to billing, SLA clocks started, routing run) and post a public reply on a ticket they
opened. Each request's latency is timed from send to the whole response read; the rate
is the writes of the timed part over its wall-clock time. Target: 300 writes/s.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from opsdesk.desk import security, service
from opsdesk.desk.models import apply_model_file
from opsdesk.model import example_model_path
from opsdesk.store.db import Database
from opsdesk.store.uow import UnitOfWork

TARGET_PER_S = 300.0
CLIENTS = 8


@dataclass(frozen=True)
class ApiFigures:
    clients: int
    writes: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.writes / self.seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(path: Path) -> str:
    """A migrated database with the example model and an agent; returns their token."""
    db = Database(f"sqlite:///{path}")
    db.migrate()
    with UnitOfWork(db) as uow:
        apply_model_file(uow, example_model_path(), author="bench")
        agent = service.create_user(
            uow, name="Bench Agent", email="agent@bench.test", roles=["agent"], teams=["billing"]
        )
        token = security.create_token(uow, agent.id, "bench").token
    db.dispose()
    return token


def _client(
    base: str, token: str, n: int, worker: int, latencies: list[float], errors: list[str]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        ticket_id = None
        for i in range(n):
            start = time.perf_counter()
            if ticket_id is None or i % 2 == 0:
                r = http.post(
                    "/api/v1/tickets",
                    json={
                        "customer": {"email": f"c{worker}-{i}@bench.test", "name": "Customer"},
                        "subject": "Refund for a double charge",
                        "channel": "email",
                        "request_type": "refund",
                        "body": "I was charged twice for May.",
                    },
                )
                if r.status_code == 201:
                    ticket_id = r.json()["id"]
            else:
                r = http.post(
                    f"/api/v1/tickets/{ticket_id}/messages",
                    json={"body": "Looking into it now.", "visibility": "public"},
                )
            latencies.append(time.perf_counter() - start)
            if r.status_code not in (200, 201):
                errors.append(f"{r.status_code} {r.text[:200]}")


def run_clients(
    base: str, token: str, clients: int, per_client: int
) -> tuple[float, list[float], list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=_client, args=(base, token, per_client, w, latencies, errors))
        for w in range(clients)
    ]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - start, latencies, errors


def measure(writes: int = 4000, clients: int = CLIENTS) -> ApiFigures:
    workdir = Path(tempfile.mkdtemp(prefix="opsdesk-api-bench-"))
    path = workdir / "api.db"
    token = _prepare(path)
    port = _free_port()
    env = {
        **os.environ,
        "OPSDESK_DATABASE_URL": f"sqlite:///{path}",
        "OPSDESK_HOST": "127.0.0.1",
        "OPSDESK_PORT": str(port),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "opsdesk.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("opsdesk serve did not answer")
        run_clients(base, token, clients, 20)  # warm: statement caches, model, pools
        seconds, latencies, errors = run_clients(base, token, clients, writes // clients)
    finally:
        server.terminate()
        server.wait(timeout=30)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return ApiFigures(clients, len(latencies), seconds, cuts[49] * 1e3, cuts[98] * 1e3, len(errors))


def report(console: Console, writes: int = 4000) -> None:
    f = measure(writes)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    table = Table(title=f"ticket writes through the HTTP API (SQLite); load average {load}")
    for col in ("clients", "writes", "seconds", "writes/s", "p50 ms", "p99 ms", "errors",
                f"target >= {TARGET_PER_S:.0f}/s"):  # fmt: skip
        table.add_column(col, justify="right")
    table.add_row(
        str(f.clients), f"{f.writes:,}", f"{f.seconds:.2f}", f"{f.rate:,.0f}",
        f"{f.p50_ms:.1f}", f"{f.p99_ms:.1f}", str(f.errors),
        "met" if f.rate >= TARGET_PER_S and not f.errors else "NOT met",
    )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    report(Console(width=130))
