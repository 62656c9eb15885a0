"""The importer and the friction diagnostic on the real ServiceNow log, replicated 1x, 10x
and 100x, with time and peak memory; beside them, PM4Py (benchmark-only, AGPL) computing
the directly-follows graph, the variants and the handover of work between teams on the
same logs, and opsdesk computing the same three (``opsdesk.analytics.process``).

- Import: the real export (``.csv.gz``) and copies of it 10x and 100x as large (the same
  rows again with distinct case numbers, made once into ``bench/out``), each imported
  with ``--preset servicenow``. The imported Parquet files are the logs measured next.
- Diagnostic: ``diagnose`` on each imported log.
- Process views: both sides start from the same Parquet file and end with the three
  results in Python, run the same way: a process per side runs them several times in a
  row, and the two sides' processes alternate for a few rounds (ours, PM4Py, ours, ...)
  so both meet the same load on a shared machine. The figures are the medians of the
  warm runs (all but each process's first); the first runs (which pay for lazy imports
  and, on our side, creating DuckDB's database) are shown too. Their results are
  checked to agree.

- Cold, whole command: what the user waits for. ``opsdesk diagnose LOG.csv --preset
  servicenow`` as a fresh process (Python start, imports, import of the CSV, the whole
  diagnostic) against a fresh process running a PM4Py script that only reads the same
  CSV with pandas and computes the directly-follows graph, the variants and the handover
  of work (``diagnostic_child pm4py-csv``), on the ServiceNow log replicated
  ``--cold-factor`` times (default 10) as a plain ``.csv``. Wall-clock from process
  start to exit, the two sides alternating for ``--cold-rounds`` rounds; medians. Beside
  it, each side's own time after its imports (opsdesk prints it; the kernel).

Each measurement runs in its own process so peak memory (max RSS) is its own.
Run: ``python -m bench.diagnostic`` (``--factors 1,10`` for fewer logs, ``--only-cold``
for the cold pair alone).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.diagnostic_child import default_runs

SERVICENOW = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "servicenow_incident_event_log.csv.gz"
)
OUT = Path("bench/out")


@dataclass
class Run:
    seconds: float
    peak_mib: float
    output: dict[str, Any]


def run_child(*args: str, timeout: float) -> Run | None:
    """Run ``python -m bench.diagnostic_child ARGS``; None when it took over ``timeout``."""
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
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {stderr[-2000:]}")
    output = json.loads(stdout.strip().splitlines()[-1])
    # the child reports its own peak RSS (ru_maxrss of itself, KiB on Linux)
    return Run(float(output.get("seconds", elapsed)), float(output["peak_kib"]) / 1024, output)


def replicate(source: Path, factor: int, out: Path) -> None:
    """``factor`` copies of a case-event Parquet file with distinct case ids (and seq)."""
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


def replicate_csv(source: Path, factor: int, out: Path) -> Path:
    """The export ``factor`` times over as one ``.csv.gz``: copy r > 0 of every row has
    case number ``<number>~r``, rows in the export's order, copy after copy (copy 0 is
    the export itself, byte for byte). Made once; later runs reuse the file."""
    if factor == 1:
        return source
    if out.exists():
        return out
    import duckdb

    partial = out.with_name(out.name + ".partial")
    con = duckdb.connect()
    try:
        con.execute("SET memory_limit = '4GB'")
        con.execute("SET enable_progress_bar = false")
        con.execute("SET preserve_insertion_order = true")
        con.execute(
            f"CREATE TABLE export AS SELECT * FROM read_csv('{source}', all_varchar = true, "
            "header = true)"
        )
        con.execute(
            f"""COPY (
                SELECT export.* REPLACE (
                    CASE WHEN r = 0 THEN number ELSE number || '~' || CAST(r AS VARCHAR) END
                        AS number)
                FROM range({int(factor)}) AS copies(r), export
                ORDER BY r, export.rowid
            ) TO '{partial}' (FORMAT csv, HEADER true, COMPRESSION gzip)"""
        )
    finally:
        con.close()
    partial.replace(out)
    return out


def plain_csv(factor: int) -> Path:
    """The ServiceNow export ``factor`` times over as a plain CSV in ``bench/out``."""
    out = OUT / f"servicenow_x{factor}.csv"
    if not out.exists():
        packed = replicate_csv(SERVICENOW, factor, OUT / f"servicenow_x{factor}.csv.gz")
        partial = out.with_name(out.name + ".partial")
        with gzip.open(packed, "rb") as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        partial.replace(out)
    return out


_KERNEL = re.compile(r"imported and diagnosed in ([0-9.]+) s")


def timed_process(command: list[str], cwd: Path, timeout: float) -> tuple[float, float, str, str]:
    """Wall-clock seconds of a whole process, from start to exit, and the CPU seconds it
    used (user + system, every thread: what a busy shared machine disturbs least); its
    stdout and stderr."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {proc.stderr[-2000:]}")
    return seconds, cpu, proc.stdout, proc.stderr


def cold_pair(factor: int, rounds: int, timeout: float, console: Any) -> dict[str, Any]:
    """The whole ``opsdesk diagnose LOG.csv`` against the cold PM4Py script, alternating."""
    log = plain_csv(factor).resolve()
    opsdesk = Path(sys.executable).with_name("opsdesk")
    ours_cmd = [str(opsdesk), "diagnose", str(log), "--preset", "servicenow"]
    theirs_cmd = [sys.executable, "-m", "bench.diagnostic_child", "pm4py-csv", str(log)]
    whole: dict[str, list[float]] = {"ours": [], "pm4py": []}
    kernel: dict[str, list[float]] = {"ours": [], "pm4py": []}
    cpu: dict[str, list[float]] = {"ours": [], "pm4py": []}
    facts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="opsdesk-cold-") as tmp:
        for r in range(rounds):
            seconds, used, _, stderr = timed_process(ours_cmd, Path(tmp), timeout)
            whole["ours"].append(seconds)
            cpu["ours"].append(used)
            found = _KERNEL.search(stderr)
            if found is None:
                raise RuntimeError(f"opsdesk diagnose printed no timing: {stderr[-500:]}")
            kernel["ours"].append(float(found.group(1)))
            seconds, used, stdout, _ = timed_process(theirs_cmd, Path.cwd(), timeout)
            whole["pm4py"].append(seconds)
            cpu["pm4py"].append(used)
            facts = json.loads(stdout.strip().splitlines()[-1])
            kernel["pm4py"].append(float(facts["seconds"]))
            console.log(
                f"cold round {r + 1}/{rounds}: opsdesk {whole['ours'][-1]:.2f} s, "
                f"PM4Py {whole['pm4py'][-1]:.2f} s"
            )
    ours, theirs = statistics.median(whole["ours"]), statistics.median(whole["pm4py"])
    return {
        "log": log,
        "rows": facts.get("events", 0),
        "ours": ours,
        "ours_kernel": statistics.median(kernel["ours"]),
        "pm4py": theirs,
        "pm4py_kernel": statistics.median(kernel["pm4py"]),
        "ratio": theirs / ours,
        "ours_cpu": statistics.median(cpu["ours"]),
        "pm4py_cpu": statistics.median(cpu["pm4py"]),
        "runs": whole,
        "load": os.getloadavg()[0],
    }


def cold_table(pair: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(
        title=f"cold, whole command: `opsdesk diagnose {pair['log'].name} --preset servicenow` "
        "against a cold PM4Py script (read CSV + DFG + variants + handover), "
        "wall-clock from process start to exit, medians of alternating runs"
    )
    for col in (
        "log",
        "rows",
        "opsdesk whole s",
        "opsdesk import+diagnostic s",
        "PM4Py whole s",
        "PM4Py after imports s",
        "speed-up (whole)",
        "target >= 5x",
        "CPU s (opsdesk / PM4Py)",
    ):
        table.add_column(col, justify="right")
    table.add_row(
        pair["log"].name,
        f"{pair['rows']:,}",
        f"{pair['ours']:.2f}",
        f"{pair['ours_kernel']:.2f}",
        f"{pair['pm4py']:.2f}",
        f"{pair['pm4py_kernel']:.2f}",
        f"{pair['ratio']:.1f}x",
        "met" if pair["ratio"] >= 5 else "not met",
        f"{pair['ours_cpu']:.1f} / {pair['pm4py_cpu']:.1f}",
    )
    table.caption = (
        f"runs (s): opsdesk {', '.join(f'{x:.2f}' for x in pair['runs']['ours'])}; PM4Py "
        f"{', '.join(f'{x:.2f}' for x in pair['runs']['pm4py'])}; "
        f"1-minute load average at the end: {pair['load']:.1f} on {os.cpu_count()} cores"
    )
    return table


def _same(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Where the two sides' results differ (empty when they agree)."""
    problems = []
    if {(a, b): n for a, b, n in ours["dfg"]} != {(a, b): n for a, b, n in theirs["dfg"]}:
        problems.append("directly-follows graph")
    mine = {tuple(v): n for v, n in ours["variants"]}
    if mine != {tuple(v): n for v, n in theirs["variants"]}:
        problems.append("variants")
    # PM4Py reports handovers as shares of all pairs: compare shares among the pairs
    ours_total = sum(n for _, _, n in ours["handover"]) or 1
    theirs_total = sum(v for _, _, v in theirs["handover"]) or 1
    a = {(x, y): n / ours_total for x, y, n in ours["handover"]}
    b = {(x, y): v / theirs_total for x, y, v in theirs["handover"]}
    if a.keys() != b.keys() or any(not math.isclose(a[k], b[k], rel_tol=1e-9) for k in a):
        problems.append("handover of work")
    return problems


def compare(
    log: Path, tmp: Path, args: argparse.Namespace, timeout: float
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Both sides' process views of ``log``, alternating their processes; None when
    PM4Py timed out. Raises when the results differ."""
    rounds, runs = default_runs(log)
    runs = int(getattr(args, "process_runs", None) or runs)
    warm: dict[str, list[float]] = {"ours": [], "pm4py": []}
    first: dict[str, list[float]] = {"ours": [], "pm4py": []}
    peak = {"ours": 0.0, "pm4py": 0.0}
    last: dict[str, Run] = {}
    for _ in range(rounds):
        for side in ("ours", "pm4py"):
            run = run_child(side, str(log), str(runs), str(tmp / f"{side}.json"), timeout=timeout)
            if run is None:
                return None
            first[side].append(run.output["runs"][0])
            warm[side] += run.output["runs"][1:]
            peak[side] = max(peak[side], run.peak_mib)
            last[side] = run
    differ = _same(
        json.loads((tmp / "ours.json").read_text()), json.loads((tmp / "pm4py.json").read_text())
    )
    if differ:
        raise RuntimeError(f"{log.name}: opsdesk and PM4Py differ on {differ}")
    out = []
    for side in ("ours", "pm4py"):
        out.append(
            {
                "seconds": statistics.median(warm[side]),
                "first_seconds": statistics.median(first[side]),
                "peak_mib": peak[side],
                "runs": len(warm[side]),
                **{k: last[side].output[k] for k in ("dfg_edges", "variants", "handover_pairs")},
            }
        )
    return out[0], out[1]


def report(args: argparse.Namespace, console: Any) -> None:
    """Import, diagnose and compare with PM4Py at each factor of ``args.factors``; print
    the two tables."""
    from rich.table import Table

    OUT.mkdir(parents=True, exist_ok=True)
    factors = [int(f) for f in str(args.factors).split(",")]
    timeout = float(getattr(args, "pm4py_timeout", 900.0))
    cold = cold_pair(
        int(getattr(args, "cold_factor", 10)),
        int(getattr(args, "cold_rounds", 3)),
        timeout,
        console,
    )
    if getattr(args, "only_cold", False):
        console.print(cold_table(cold))
        return
    imports = Table(title="import of the ServiceNow export (CSV, gzip) with --preset servicenow")
    for col in ("log", "rows", "events", "import s", "import peak MiB", "rows/s"):
        imports.add_column(col, justify="right")
    table = Table(
        title="friction diagnostic on the imported logs (Parquet), and the computations "
        "PM4Py also does (DFG + variants + handover of work): median of warm runs"
    )
    for col in (
        "log",
        "events",
        "diagnostic s",
        "diagnostic peak MiB",
        "opsdesk DFG+variants+handover s",
        "opsdesk peak MiB",
        "PM4Py same s",
        "PM4Py peak MiB",
        "speed-up",
        "first runs s (opsdesk / PM4Py)",
    ):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory(prefix="opsdesk-bench-") as tmp:
        for factor in factors:
            csv = replicate_csv(SERVICENOW, factor, OUT / f"servicenow_x{factor}.csv.gz")
            log = OUT / f"servicenow_x{factor}.parquet"
            imported = run_child("import", str(csv), str(log), timeout=3600)
            assert imported is not None
            rows = int(imported.output["rows"])
            imports.add_row(
                f"x{factor}",
                f"{rows:,}",
                f"{imported.output['events']:,}",
                f"{imported.seconds:,.1f}",
                f"{imported.peak_mib:,.0f}",
                f"{rows / imported.seconds:,.0f}",
            )
            console.log(f"x{factor} imported in {imported.seconds:,.1f} s")

            diag = run_child("diagnose", str(log), timeout=1800)
            assert diag is not None
            sides = compare(log, Path(tmp), args, timeout)
            if sides is None:
                table.add_row(f"x{factor}", f"{diag.output['events']:,}", *["-"] * 8)
                console.log(f"x{factor}: PM4Py took over {timeout:,.0f} s")
                continue
            ours, theirs = sides
            speedup = theirs["seconds"] / ours["seconds"]
            table.add_row(
                f"x{factor}",
                f"{diag.output['events']:,}",
                f"{diag.seconds:,.1f}",
                f"{diag.peak_mib:,.0f}",
                f"{ours['seconds']:,.3f}",
                f"{ours['peak_mib']:,.0f}",
                f"{theirs['seconds']:,.2f}",
                f"{theirs['peak_mib']:,.0f}",
                f"{speedup:,.1f}x",
                f"{ours['first_seconds']:,.3f} / {theirs['first_seconds']:,.2f}",
            )
            console.log(
                f"x{factor}: {ours['runs']} warm runs a side, results agree "
                f"({ours['dfg_edges']} edges, {ours['variants']:,} variants, "
                f"{ours['handover_pairs']} team pairs)"
            )
    console.print(imports)
    console.print(table)
    console.print(cold_table(cold))
    console.print(
        "targets: the diagnostic on ~12 M events <= 60 s and <= 6 GiB; "
        ">= 10x faster than PM4Py on the shared computations; the whole `opsdesk diagnose "
        "LOG.csv` >= 5x faster than the cold PM4Py script"
    )


def main() -> None:
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--factors", default="1,10,100")
    parser.add_argument("--pm4py-timeout", type=float, default=900.0)
    parser.add_argument(
        "--process-runs",
        type=int,
        default=None,
        help="runs of the process views per process (default: 8, 4 or 2 by log size)",
    )
    parser.add_argument("--cold-factor", type=int, default=10)
    parser.add_argument("--cold-rounds", type=int, default=3)
    parser.add_argument("--only-cold", action="store_true", help="only the cold whole-command pair")
    report(parser.parse_args(), Console(width=150))


if __name__ == "__main__":
    main()
