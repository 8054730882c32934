"""``vta sweep SPACE.toml``: the command behind the option parsing in `vta.cli`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .runner import SweepResult, run_sweep
from .space import load_space


def default_outdir(space: Path) -> Path:
    """``sweep-<space file stem>`` in the current directory."""
    return Path(f"sweep-{space.stem}")


def _split(workloads: tuple[str, ...]) -> list[str] | None:
    """``--workloads`` values, each holding one or more specs separated by spaces."""
    out = [w for value in workloads for w in value.split()]
    return out or None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def print_report(res: SweepResult, console: Any) -> None:
    """Counts, speed, failures (a few), the Pareto fronts and the files written."""
    from rich.table import Table

    c = res.counts()
    console.print(f"[bold]{len(res.points)} points[/]: {c['ok']} ok, {c['invalid']} invalid configs, "
                  f"{c['error']} failed, {c['pending']} not run; this run computed {len(res.computed)} on "
                  f"{res.executor} ({res.workers} workers) in {res.seconds:.1f} s "
                  f"({res.points_per_minute():.0f} points/min), skipped {res.skipped} finished", soft_wrap=True)
    bad = [r for r in res.rows if r["status"] != "ok"][:5]
    for r in bad:
        console.print(f"  [red]{r['status']}[/] {r['workload']} @ {r.get('config_name') or r['config_key']}: "
                      f"{r.get('error')}", soft_wrap=True)
    for cost, front in res.pareto.items():
        t = Table(title=f"Pareto front: inferences/s against {cost}")
        t.add_column("config", overflow="fold")
        for col in (cost, "total cycles", "inferences/s"):
            t.add_column(col, justify="right")
        for s in front:
            t.add_row(s["config_name"], _fmt(s[cost]), _fmt(s["total_cycles"]), _fmt(s["inferences_per_s"]))
        console.print(t)
    console.print("wrote " + ", ".join(str(f) for f in res.files), soft_wrap=True)


def sweep_cmd(space_path: Path, workloads: tuple[str, ...], scheduler: str | None, outdir: Path | None,
              target: str | None, synth: str | None, fmax: bool, jobs: int | None, limit: int | None,
              retry_errors: bool, no_plots: bool, as_json: bool) -> None:
    """Load the space, run it, report; exit status 130 when interrupted."""
    from vta.cli import err, out

    if scheduler and jobs is not None:
        raise click.UsageError("--jobs is for local processes; with --scheduler the cluster's workers run the points")
    space = load_space(space_path, _split(workloads), target)
    res = run_sweep(space, outdir or default_outdir(space_path), jobs=jobs, scheduler=scheduler, synth=synth,
                    fmax=fmax, limit=limit, retry_errors=retry_errors, plots=not no_plots,
                    show_progress=not as_json and err.is_terminal)
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=1))
    else:
        print_report(res, out)
    if res.interrupted:
        err.print("interrupted: the finished points are in the table; run the same command again to resume",
                  soft_wrap=True)
        sys.exit(130)
