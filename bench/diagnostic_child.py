"""One measured step of bench.diagnostic, run in its own process. Prints one JSON line.

    python -m bench.diagnostic_child import SOURCE OUT
    python -m bench.diagnostic_child diagnose LOG.parquet
    python -m bench.diagnostic_child ours|pm4py LOG.parquet [RUNS [RESULTS.json]]
    python -m bench.diagnostic_child pm4py-csv LOG.csv

``pm4py-csv`` is the cold PM4Py side of the whole-command comparison: what a user's
script does from a cold process, imports included (pandas, pm4py), on the ServiceNow
CSV: read it, then the directly-follows graph, the variants and the handover of work
between teams; ``seconds`` is the part after the imports.

``ours`` and ``pm4py`` compute the same three results (directly-follows graph, variants,
handover of work between teams) from the same Parquet file, each run starting from the
file and ending with the results in Python objects, the same way ``RUNS`` times in a
row: ``seconds`` is the median of the runs after the first (warm), ``first_seconds`` the
first run (which pays for lazy imports and, on our side, creating the DuckDB database).
Module imports (pandas, pm4py, duckdb) are outside the runs on both sides. With
``RESULTS.json`` the results are written there, so the caller can check they agree.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

Results = dict[str, Any]


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


Side = tuple[Callable[[], Any], Callable[[Any], Results]]


def ours(path: Path) -> Side:
    """(the computation, from the file to the library's own results; those results in
    the comparison's common form)."""
    from opsdesk.analytics import process

    def run() -> Any:
        return process.mine(path)

    def common(views: Any) -> Results:
        return {
            "dfg": [[a, b, n] for a, b, n in views.directly_follows],
            "variants": [[v.split(" > "), n] for v, n in views.variants],
            "handover": [[a, b, n] for a, b, n in views.team_handover],
        }

    return run, common


def pm4py_side(path: Path) -> Side:
    import pm4py
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    keys = {"case_id_key": "case_id", "activity_key": "activity", "timestamp_key": "at"}
    columns = ["case_id", "seq", "at", "type", "activity", "team"]

    def run() -> Any:
        # the same file, the same columns, the same order within a case (time, then seq);
        # SLA clock events are no steps on either side (an imported log has none)
        table = pq.read_table(path, columns=columns)
        table = table.filter(pc.invert(pc.starts_with(table["type"], "sla.")))
        frame = table.to_pandas()
        frame["activity"] = frame["activity"].fillna(frame["type"])
        frame = frame.sort_values(["case_id", "at", "seq"], kind="stable")
        dfg, _, _ = pm4py.discover_dfg(frame, **keys)
        variants = pm4py.get_variants(frame, **keys)
        network = pm4py.discover_handover_of_work_network(
            frame.dropna(subset=["team"]),
            beta=0,
            resource_key="team",
            case_id_key="case_id",
            timestamp_key="at",
        )
        return dfg, variants, network

    def common(results: Any) -> Results:
        dfg, variants, network = results
        return {
            "dfg": [[a, b, int(n)] for (a, b), n in dfg.items()],
            "variants": [[list(v), int(n)] for v, n in variants.items()],
            # PM4Py's handover values are shares of all consecutive pairs (a team handing
            # over to itself included); ours are counts of pairs of different teams
            "handover": [[a, b, v] for (a, b), v in network.connections.items() if a != b and v],
        }

    return run, common


def pm4py_csv(path: Path, started: float) -> dict[str, object]:
    """Read the ServiceNow CSV with pandas and compute PM4Py's DFG, variants and
    handover of work (teams), as a PM4Py user would; times from ``started``."""
    import pandas as pd
    import pm4py

    imported = time.perf_counter()
    keys = {
        "case_id_key": "number",
        "activity_key": "incident_state",
        "timestamp_key": "sys_updated_at",
    }
    # the leanest way to PM4Py's three results, as the warm comparison does: text
    # columns, one parse of the time, one stable sort, the keys passed to each call
    frame = pd.read_csv(path, na_values=["?"], keep_default_na=False, dtype=str)
    frame["sys_updated_at"] = pd.to_datetime(frame["sys_updated_at"], format="%d/%m/%Y %H:%M")
    frame = frame.sort_values(["number", "sys_updated_at"], kind="stable")
    dfg, _, _ = pm4py.discover_dfg(frame, **keys)
    variants = pm4py.get_variants(frame, **keys)
    network = pm4py.discover_handover_of_work_network(
        frame.dropna(subset=["assignment_group"]),
        beta=0,
        resource_key="assignment_group",
        case_id_key="number",
        timestamp_key="sys_updated_at",
    )
    return {
        "imports_seconds": imported - started,
        "seconds": time.perf_counter() - imported,
        "events": len(frame),
        "dfg_edges": len(dfg),
        "variants": len(variants),
        "handover_pairs": len(network.connections),
    }


def measure(side: Side, runs: int) -> tuple[list[float], Results]:
    """Each run's seconds, and the last run's results in the common form (converted
    outside the timing: the form is the comparison's, not part of either computation)."""
    run, common = side
    times: list[float] = []
    result: Any = None
    for _ in range(max(runs, 2)):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return times, common(result)


def default_runs(path: Path) -> tuple[int, int]:
    """(rounds, runs per round) for a log: more of small logs, where one run is short
    and noise is relatively large."""
    size = path.stat().st_size
    return (3, 8) if size < 10_000_000 else (3, 4) if size < 30_000_000 else (2, 2)


def main() -> None:
    warnings.filterwarnings("ignore")
    step, path = sys.argv[1], Path(sys.argv[2])
    out: dict[str, object] = {}
    start = time.perf_counter()
    if step == "import":
        from opsdesk.analytics.importers import import_log

        result = import_log(path, Path(sys.argv[3]), preset="servicenow")
        out["rows"] = result.rows
        out["events"] = result.events
        out["cases"] = result.cases
        out["seconds"] = result.seconds
    elif step == "diagnose":
        from opsdesk.analytics.engine import diagnose

        diagnosis = diagnose(path)
        out["events"] = diagnosis.summary.events
        out["cases"] = diagnosis.summary.cases
        out["findings"] = len(diagnosis.findings)
        out["seconds"] = time.perf_counter() - start
    elif step in ("ours", "pm4py"):
        runs = int(sys.argv[3]) if len(sys.argv) > 3 else default_runs(path)[1]
        times, result = measure(ours(path) if step == "ours" else pm4py_side(path), runs)
        out["first_seconds"] = times[0]
        out["seconds"] = statistics.median(times[1:])
        out["runs"] = times
        out["dfg_edges"] = len(result["dfg"])
        out["variants"] = len(result["variants"])
        out["handover_pairs"] = len(result["handover"])
        if len(sys.argv) > 4:
            Path(sys.argv[4]).write_text(json.dumps(result))
    elif step == "pm4py-csv":
        out.update(pm4py_csv(path, start))
    else:
        raise SystemExit(f"unknown step {step!r}")
    out["peak_kib"] = peak_kib()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
