"""Ticket writes per second through the HTTP API, with 8 concurrent clients (issue #10).

`opsdesk serve` runs in its own process on a fresh SQLite database (the example model,
an agent of billing with a token). The load comes from ``wrk`` (a C load generator, so
the clients do not take the server's CPU on this 2-core machine; `make bench` installs
it): 8 keep-alive connections alternate two writes, open a ticket for a customer given
by e-mail (triaged to billing, SLA clocks started, routing run) and post a public reply
on the last ticket their thread opened (``bench/api_writes.lua``). wrk reports the rate
and the latency distribution (send to whole response); the server's CPU time per write
(all its processes, from /proc) is less sensitive to a busy machine than the rate.
Target: 300 writes/s.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
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
    cpu_seconds: float  # the server's processes, during the measured run

    @property
    def cpu_ms_per_write(self) -> float:
        return 1000 * self.cpu_seconds / self.writes

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


SCRIPT = Path(__file__).with_name("api_writes.lua")


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` and its descendants so far (Linux)."""
    stats: dict[int, tuple[int, int]] = {}  # pid -> (parent, clock ticks)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended meanwhile
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    ticks, todo = 0, [pid]
    while todo:
        member = todo.pop()
        ticks += stats.get(member, (0, 0))[1]
        todo.extend(child for child, (parent, _) in stats.items() if parent == member)
    return ticks / os.sysconf("SC_CLK_TCK")


def _millis(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def _wrk(base: str, token: str, seconds: int, clients: int) -> str:
    done = subprocess.run(
        ["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "--latency",
         "-s", str(SCRIPT), base],
        env={**os.environ, "OPSDESK_BENCH_TOKEN": token},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def measure(seconds: int = 20, clients: int = CLIENTS) -> ApiFigures:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: `make bench` installs it (apt-get install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="opsdesk-api-bench-"))
    path = workdir / "api.db"
    token = _prepare(path)
    port = _free_port()
    env = {
        **os.environ,
        "OPSDESK_DATABASE_URL": f"sqlite:///{path}",
        "OPSDESK_HOST": "127.0.0.1",
        "OPSDESK_PORT": str(port),
        "OPSDESK_LOG_LEVEL": "warning",
        # one token drives the whole load: its per-token limit (counted still) must not bite
        "OPSDESK_RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "opsdesk.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
        _wrk(base, token, 3, clients)  # warm: statement caches, the model, the pools
        cpu_before = _cpu_seconds(server.pid)
        report = _wrk(base, token, seconds, clients)
        cpu = _cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)
    requests = int(re.search(r"(\d+) requests in", report).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1))  # type: ignore[union-attr]
    # the distribution's rows, not a "+/- Stdev" column that happens to end in 50% or 99%
    p50 = _millis(re.search(r"(?m)^\s+50%\s+(\S+)", report).group(1))  # type: ignore[union-attr]
    p99 = _millis(re.search(r"(?m)^\s+99%\s+(\S+)", report).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    errors = int(bad.group(1)) if bad else 0
    return ApiFigures(clients, requests, requests / rate, p50, p99, errors, cpu)


def report(console: Console, seconds: int = 20) -> None:
    f = measure(seconds)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    table = Table(title=f"ticket writes through the HTTP API (SQLite, wrk); load average {load}")
    for col in ("clients", "writes", "seconds", "writes/s", "p50 ms", "p99 ms", "errors",
                "server CPU ms/write", f"target >= {TARGET_PER_S:.0f}/s"):  # fmt: skip
        table.add_column(col, justify="right")
    table.add_row(
        str(f.clients), f"{f.writes:,}", f"{f.seconds:.2f}", f"{f.rate:,.0f}",
        f"{f.p50_ms:.1f}", f"{f.p99_ms:.1f}", str(f.errors), f"{f.cpu_ms_per_write:.2f}",
        "met" if f.rate >= TARGET_PER_S and not f.errors else "NOT met",
    )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    report(Console(width=130))
