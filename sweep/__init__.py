"""Configuration sweeps: configs (a base and axes of config fields) x workloads, each
point validated, compiled and run for cycles, GEMM utilization and DRAM traffic (and, with
`vta.hw.synth`, a synthesis estimate per config), on local processes or a Dask cluster,
streamed to a resumable CSV table, with Pareto and roofline plots. `vta sweep` is the
command line.

    from vta.sweep import load_space, run_sweep
    result = run_sweep(load_space("examples/sweep_small.toml"), "out/", jobs=2)
    print(result.counts(), result.pareto)
"""

from .analysis import config_summary, pareto_front, resource_columns
from .evaluate import evaluate_point, run_task, synthesize
from .executors import DaskExecutor, Executor, InlineExecutor, LocalExecutor, make_executor
from .runner import SweepResult, run_sweep
from .space import Point, Space, load_space, parse_space
from .table import Table
from .workloads import SpaceError, WorkloadSpec

__all__ = [
    "DaskExecutor", "Executor", "InlineExecutor", "LocalExecutor", "Point", "Space", "SpaceError", "SweepResult",
    "Table", "WorkloadSpec", "config_summary", "evaluate_point", "load_space", "make_executor", "pareto_front",
    "parse_space", "resource_columns", "run_sweep", "run_task", "synthesize",
]
