"""Sweep throughput: points per minute with the fsim timing model, for the same space on
local worker processes (`ProcessPoolExecutor`) and on a Dask `LocalCluster` with the same
number of workers, next to one process running every point in turn (the peer).

Each run starts from an empty output folder, so every point is computed. "sweep" is the
time of `run_sweep` (for local processes it includes spawning the pool; the Dask cluster is
started before, and its start-up is reported on its own); "with start-up" adds it.

    python benchmarks/sweep_throughput.py [--space examples/sweep_resnet18.toml] [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from vta.sweep import InlineExecutor, LocalExecutor, load_space, run_sweep
from vta.sweep.executors import DaskExecutor

ROOT = Path(__file__).parent.parent


def measure(name: str, space: Any, make: Any, startup_s: float = 0.0) -> dict[str, Any]:
    """Run the space once on a fresh executor; points/min and the run's counts."""
    with tempfile.TemporaryDirectory() as d, make() as ex:
        res = run_sweep(space, Path(d) / "out", executor=ex, plots=False)
    n = len(res.computed)
    return {"executor": name, "workers": res.workers, "points": n, "ok": res.counts()["ok"],
            "sweep_s": round(res.seconds, 2), "startup_s": round(startup_s, 2),
            "points_per_min": round(60 * n / res.seconds, 1),
            "points_per_min_with_startup": round(60 * n / (res.seconds + startup_s), 1)}


def run_dask(space: Any, workers: int) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    startup = time.perf_counter() - t0
    try:
        return measure("dask LocalCluster", space, lambda: DaskExecutor(client=client), startup)
    finally:
        client.close()
        cluster.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default=str(ROOT / "examples" / "sweep_resnet18.toml"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    space = load_space(a.space)
    rows = [measure("one process (peer)", space, InlineExecutor),
            measure("local processes", space, lambda: LocalExecutor(a.workers)),
            run_dask(space, a.workers)]
    if a.json:
        print(json.dumps({"space": a.space, "points": len(space.points()), "rows": rows}, indent=1))
        return
    print(f"space {a.space}: {len(space.points())} points ({len(space.configs())} configs x "
          f"{len(space.workloads)} workloads), target {space.target}")
    cols = ["executor", "workers", "points", "ok", "sweep_s", "points_per_min", "startup_s",
            "points_per_min_with_startup"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    peer = rows[0]["points_per_min"]
    for r in rows[1:]:
        print(f"{r['executor']}: {r['points_per_min'] / peer:.2f}x the one-process rate")


if __name__ == "__main__":
    main()
