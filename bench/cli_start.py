"""How long `opsdesk --help` takes from a cold process: what a user waits for first.

Each run is a whole new process (Python start, imports, typer); the median of 11 runs
is printed beside the 0.3 s target (issue #10).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

TARGET_S = 0.3


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(runs: int = 11) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each run."""
    exe = shutil.which("opsdesk", path=str(Path(sys.executable).parent)) or "opsdesk"
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), _children_cpu()
        subprocess.run([exe, "--help"], check=True, capture_output=True)
        wall.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - start_cpu)
    return wall, cpu


def report(console: Console) -> None:
    times, cpu = measure()
    median = statistics.median(times)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    verdict = "met" if median < TARGET_S else "NOT met"
    console.print(
        f"`opsdesk --help`, cold process: median {median:.3f} s of {len(times)} runs "
        f"(min {min(times):.3f}, max {max(times):.3f}; CPU median {statistics.median(cpu):.3f} s); "
        f"target < {TARGET_S} s: {verdict}; "
        f"load average {load}"
    )


if __name__ == "__main__":
    report(Console())
