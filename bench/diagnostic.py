"""The friction diagnostic on the real ServiceNow log, replicated 1x, 10x and 100x, with
time and peak memory; beside it, PM4Py (benchmark-only, AGPL) computing the
directly-follows graph, the variants and the handover of work between teams on the same
logs, and opsdesk computing the same three in DuckDB.

Each measurement runs in its own process so peak memory (max RSS) is its own.
Run: ``python -m bench.diagnostic`` (part of ``make bench``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SERVICENOW = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "servicenow_incident_event_log.csv.gz"
)


@dataclass
class Run:
    seconds: float
    peak_mib: float
    output: dict[str, object]


def run_child(*args: str, timeout: float) -> Run | None:
    """Run ``python -m bench.diagnostic_child ARGS`` and measure its time and max RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.diagnostic_child", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    elapsed = time.perf_counter() - start
    # the child reports its own peak RSS (ru_maxrss of itself, KiB on Linux)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {stderr[-2000:]}")
    output = json.loads(stdout.strip().splitlines()[-1])
    return Run(float(output.get("seconds", elapsed)), float(output["peak_kib"]) / 1024, output)


def replicate(source: Path, factor: int, out: Path) -> None:
    """``factor`` copies of the log with distinct case ids (and seq), as Parquet."""
    import duckdb

    if out.exists():
        return
    con = duckdb.connect()
    con.execute("SET memory_limit = '4GB'")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET preserve_insertion_order = false")
    n = con.execute(f"SELECT max(seq) + 1 FROM read_parquet('{source}')").fetchone()[0]
    con.execute(
        f"""COPY (
            SELECT * REPLACE (case_id || '~' || CAST(r AS VARCHAR) AS case_id,
                              seq + r * {int(n)} AS seq)
            FROM range({int(factor)}) AS copies(r) CROSS JOIN read_parquet('{source}')
        ) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"""
    )
    con.close()
