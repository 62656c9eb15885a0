"""One measured step of bench.diagnostic, run in its own process. Prints one JSON line."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    step, path = sys.argv[1], Path(sys.argv[2])
    out: dict[str, object] = {}
    start = time.perf_counter()
    if step == "import":
        from opsdesk.analytics.importers import import_log

        result = import_log(path, Path(sys.argv[3]), preset="servicenow")
        out["events"] = result.events
        out["cases"] = result.cases
    elif step == "diagnose":
        from opsdesk.analytics.engine import diagnose

        diagnosis = diagnose(path)
        out["events"] = diagnosis.summary.events
        out["cases"] = diagnosis.summary.cases
        out["findings"] = len(diagnosis.findings)
    elif step == "ours":
        from opsdesk.analytics import process

        start = time.perf_counter()  # from the Parquet file to the results, as for PM4Py
        con = process.connect(path)
        out["dfg_edges"] = len(process.directly_follows(con))
        out["variants"] = len(process.variants(con))
        out["handover_pairs"] = len(process.team_handover(con))
    elif step == "pm4py":
        import pandas as pd
        import pm4py

        start = time.perf_counter()  # from the same Parquet file to the same three results
        frame = pd.read_parquet(path, columns=["case_id", "seq", "at", "type", "activity", "team"])
        frame["activity"] = frame["activity"].fillna(frame["type"])
        frame = frame.sort_values(["case_id", "at", "seq"], kind="stable")
        out["load_seconds"] = time.perf_counter() - start
        keys = {"case_id_key": "case_id", "activity_key": "activity", "timestamp_key": "at"}
        dfg, _, _ = pm4py.discover_dfg(frame, **keys)
        out["dfg_edges"] = len(dfg)
        out["variants"] = len(pm4py.get_variants(frame, **keys))
        teams = frame.dropna(subset=["team"])
        network = pm4py.discover_handover_of_work_network(
            teams, beta=0, resource_key="team", case_id_key="case_id", timestamp_key="at"
        )
        # pairs of different teams (PM4Py also lists a team handing over to itself)
        out["handover_pairs"] = sum(1 for (a, b), v in network.connections.items() if v and a != b)
    out["seconds"] = time.perf_counter() - start
    out["peak_kib"] = peak_kib()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
