"""Run a sweep: the points a space defines that the output folder does not hold yet, on an
executor, rows appended to the tables as they finish, then the joined table and plots.

Output folder:

- ``points.csv``: one row per point (config x workload), appended as each finishes;
- ``synth.csv``: one row per config and FPGA family (``--synth``), likewise, and each
  estimate's whole report (per module and memory) in ``synth_reports/<key>.json``;
- ``results.csv`` (and ``results.parquet`` with pyarrow): this space's points joined with
  their configs' synthesis estimates, rewritten at the end of each run;
- ``configs.csv``: per config, total cycles, inferences/s, costs and Pareto membership;
- ``space.json``: the space as run; ``pareto.png``, ``roofline_<workload>.png``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vta.isa import Config
from vta.isa.errors import ConfigError, VTAError

from .analysis import config_summary, cost_axes, pareto_front
from .evaluate import REPORT_KEY, STATUS_ERROR, STATUS_INVALID, STATUS_OK, fmax_module, synth_module
from .executors import Executor, Task, make_executor
from .plots import write_plots
from .space import KEY_VERSION, Point, Space, stable_hash
from .table import Table, write_csv, write_parquet

POINTS_CSV, SYNTH_CSV, RESULTS_CSV, CONFIGS_CSV = "points.csv", "synth.csv", "results.csv", "configs.csv"
SYNTH_REPORTS = "synth_reports"


@dataclass
class SweepResult:
    """What a run did: the rows of the space's finished points (joined with synthesis), the
    keys computed by this run, and the files written."""

    outdir: Path
    points: list[Point]
    rows: list[dict[str, Any]]
    computed: list[str]
    skipped: int
    seconds: float
    executor: str
    workers: int
    summary: list[dict[str, Any]] = field(default_factory=list)
    pareto: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    interrupted: bool = False

    def counts(self) -> dict[str, int]:
        """Rows of this space by status, and points not yet run."""
        out = {s: 0 for s in (STATUS_OK, STATUS_INVALID, STATUS_ERROR)}
        for r in self.rows:
            out[r["status"]] = out.get(r["status"], 0) + 1
        out["pending"] = len(self.points) - len(self.rows)
        return out

    def points_per_minute(self) -> float:
        return 60 * len(self.computed) / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"outdir": str(self.outdir), "points": len(self.points), "computed": len(self.computed),
                "skipped": self.skipped, "seconds": round(self.seconds, 3), "executor": self.executor,
                "workers": self.workers, "points_per_minute": round(self.points_per_minute(), 1),
                "counts": self.counts(), "interrupted": self.interrupted,
                "pareto": {c: [s["config_name"] for s in f] for c, f in self.pareto.items()},
                "files": [str(f) for f in self.files]}


def synth_key(config_key: str, family: str, fmax: bool) -> str:
    return stable_hash({"v": KEY_VERSION, "config_key": config_key, "family": family, "fmax": fmax})


def _valid(config: dict[str, Any]) -> bool:
    try:
        Config(**config)
    except (ConfigError, TypeError):
        return False
    return True


def _needs_run(table: Table, key: str, retry_errors: bool) -> bool:
    row = table.rows.get(key)
    return row is None or (retry_errors and row.get("status") == STATUS_ERROR)


@dataclass
class Plan:
    """The tasks of one run: points to measure and configs to synthesize."""

    points: list[Point]
    synth: list[tuple[str, dict[str, Any]]]  # (synth key, payload)

    def tasks(self, verify: bool) -> Iterator[tuple[str, Task]]:
        for key, payload in self.synth:  # first: points wait on nothing, but the estimates take longest
            yield key, ("synth", payload)
        for p in self.points:
            yield p.key, ("point", {**p.payload(), "verify": verify})

    def __len__(self) -> int:
        return len(self.points) + len(self.synth)


def plan(space: Space, points: Table, synth: Table | None, family: str | None, fmax: bool, limit: int | None,
         retry_errors: bool) -> Plan:
    """The points not in the table (at most ``limit``), and a synthesis task for each valid
    config among those and the finished ones whose estimate is missing."""
    all_points = space.points()
    todo = [p for p in all_points if _needs_run(points, p.key, retry_errors)]
    if limit is not None:
        todo = todo[:limit]
    tasks: list[tuple[str, dict[str, Any]]] = []
    if family and synth is not None:
        chosen = {p.key for p in todo} | {p.key for p in all_points if p.key in points}
        seen: set[str] = set()
        for p in all_points:
            if p.key not in chosen or p.config_key in seen or not _valid(p.config):
                continue
            seen.add(p.config_key)
            sk = synth_key(p.config_key, family, fmax)
            if _needs_run(synth, sk, retry_errors):
                tasks.append((sk, {"key": sk, "config_key": p.config_key, "config": p.config, "family": family,
                                   "fmax": fmax}))
    return Plan(todo, tasks)


def joined_rows(space: Space, points: Table, synth: Table | None, family: str | None, fmax: bool
                ) -> list[dict[str, Any]]:
    """This space's finished points, in space order, each with its config's synthesis columns."""
    out = []
    for p in space.points():
        row = points.get(p.key)
        if row is None:
            continue
        if family and synth is not None:
            s = synth.get(synth_key(p.config_key, family, fmax))
            if s is not None:
                row["synth_family"] = family
                row["synth_status"] = s.get("status")
                if s.get("error"):
                    row["synth_error"] = s["error"]
                row.update({k: v for k, v in s.items() if k.startswith("synth_")})
        out.append(row)
    return out


def check_synth(family: str | None, fmax: bool) -> None:
    """Fail now, with the reason, when ``--synth``/``--fmax`` cannot be served."""
    if fmax and not family:
        raise VTAError("--fmax needs --synth FAMILY")
    if family:
        synth_module()
        if fmax:
            if family != "ecp5":
                raise VTAError(f"--fmax places and routes with nextpnr-ecp5: it needs --synth ecp5, not {family}")
            fmax_module()


def _progress(show: bool) -> Any:
    """A rich progress bar on stderr: done/total, failures, elapsed time and ETA."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[failed]}"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=Console(stderr=True), disable=not show)


def _record(kind: str, row: dict[str, Any], points: Table, synth: Table | None) -> str:
    """Append a finished task's row (a synthesis report goes to ``synth_reports/KEY.json``);
    its status."""
    if kind == "point":
        points.append(row)
    else:
        report = row.pop(REPORT_KEY, None)
        if report is not None:
            folder = synth.path.parent / SYNTH_REPORTS  # type: ignore[union-attr]
            folder.mkdir(exist_ok=True)
            (folder / f"{row['key']}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
        synth.append(row)  # type: ignore[union-attr]
    return str(row.get("status"))


def _tally(counts: dict[str, int]) -> str:
    parts = [f"{counts[s]} {s}" for s in (STATUS_INVALID, STATUS_ERROR) if counts.get(s)]
    return f"[red]{', '.join(parts)}[/]" if parts else ""


def execute(run_plan: Plan, executor: Executor, points: Table, synth: Table | None, verify: bool,
            show_progress: bool) -> tuple[list[str], bool]:
    """Run the plan, appending rows as they come; (point keys computed, interrupted)."""
    kinds = {k: "synth" for k, _ in run_plan.synth} | {p.key: "point" for p in run_plan.points}
    computed: list[str] = []
    counts: dict[str, int] = {}
    with _progress(show_progress) as bar:
        task = bar.add_task(f"sweep on {executor.name} ({executor.workers})", total=len(run_plan), failed="")
        try:
            for tid, row in executor.run(run_plan.tasks(verify)):
                status = _record(kinds[tid], row, points, synth)
                counts[status] = counts.get(status, 0) + 1
                if kinds[tid] == "point":
                    computed.append(tid)
                bar.update(task, advance=1, failed=_tally(counts))
        except KeyboardInterrupt:
            return computed, True
    return computed, False


def finish(space: Space, outdir: Path, points: Table, synth: Table | None, family: str | None, fmax: bool,
           plots: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, list[dict[str, Any]]],
                                 list[Path]]:
    """Write the joined table, the per-config summary and the plots; (rows, summary, fronts, files)."""
    rows = joined_rows(space, points, synth, family, fmax)
    files: list[Path] = []
    if rows:
        write_csv(rows, outdir / RESULTS_CSV)
        files.append(outdir / RESULTS_CSV)
        if write_parquet(rows, outdir / "results.parquet"):
            files.append(outdir / "results.parquet")
    names = [w.name for w in space.workloads]
    summary = config_summary(rows, names)
    fronts = {c: pareto_front(summary, c) for c in cost_axes(summary)} if summary else {}
    if summary:
        members = {c: {s["config_key"] for s in f} for c, f in fronts.items()}
        write_csv([{**s, **{f"pareto_{c}": s["config_key"] in m for c, m in members.items()}} for s in summary],
                  outdir / CONFIGS_CSV)
        files.append(outdir / CONFIGS_CSV)
    if plots:
        files += write_plots(rows, summary, names, outdir)
    return rows, summary, fronts, files


def space_record(space: Space) -> dict[str, Any]:
    return {"source": str(space.source) if space.source else None, "base": space.base, "axes": space.axes,
            "target": space.target, "verify": space.verify, "workloads": [w.to_dict() for w in space.workloads]}


def run_sweep(space: Space, outdir: str | Path, executor: Executor | None = None, jobs: int | None = None,
              scheduler: str | None = None, synth: str | None = None, fmax: bool = False, limit: int | None = None,
              retry_errors: bool = False, plots: bool = True, show_progress: bool = False) -> SweepResult:
    """Run the points of ``space`` that ``outdir`` does not hold yet and write the tables and
    plots. The executor is ``executor`` if given, else Dask at ``scheduler``, else ``jobs``
    local processes (0: this process). ``synth`` names an FPGA family for `vta.hw.synth`
    estimates (``fmax``: with Fmax); ``limit`` caps the points run now."""
    check_synth(synth, fmax)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "space.json").write_text(json.dumps(space_record(space), indent=1) + "\n")
    points = Table(outdir / POINTS_CSV)
    synth_table = Table(outdir / SYNTH_CSV) if synth else None
    run_plan = plan(space, points, synth_table, synth, fmax, limit, retry_errors)
    todo = {p.key for p in run_plan.points}
    skipped = sum(1 for p in space.points() if p.key in points and p.key not in todo)
    own = executor is None
    t0 = time.perf_counter()
    computed: list[str] = []
    interrupted = False
    if len(run_plan):
        ex = executor if executor is not None else make_executor(jobs, scheduler)
        try:
            computed, interrupted = execute(run_plan, ex, points, synth_table, space.verify, show_progress)
        finally:
            if own:
                ex.close()
        name, workers = ex.name, ex.workers
    else:
        name, workers = (executor.name, executor.workers) if executor is not None else ("none", 0)
    seconds = time.perf_counter() - t0
    rows, summary, fronts, files = finish(space, outdir, points, synth_table, synth, fmax, plots)
    return SweepResult(outdir, space.points(), rows, computed, skipped, seconds, name, workers, summary, fronts,
                       [outdir / POINTS_CSV] + ([outdir / SYNTH_CSV] if synth else []) + files, interrupted)
