"""Plots of a sweep, written as PNG files with matplotlib (no display needed).

- ``pareto.png``: inferences/s of each config (every workload once, at the config's clock)
  against each cost (synthesis LUT/FF/DSP/BRAM when there are estimates, else MAC units and
  on-chip buffer bytes); the Pareto-optimal configs are joined and labelled.
- ``roofline_<workload>.png``: per workload, achieved MACs per cycle against arithmetic
  intensity (workload MACs per DRAM byte moved), with each config's roofs: the compute roof
  at its peak MACs per cycle and the memory roof at its bus bytes per cycle times intensity.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from .analysis import cost_axes, pareto_front
from .evaluate import STATUS_OK


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _scales(ax: Any, xs: list[float], ys: list[float]) -> None:
    """Log scale on an axis whose positive values span a decade or more (minor ticks then
    unlabelled, as their labels would overlap); linear otherwise."""
    from matplotlib.ticker import NullFormatter

    for vals, set_scale, axis in ((xs, ax.set_xscale, ax.xaxis), (ys, ax.set_yscale, ax.yaxis)):
        if vals and min(vals) > 0 and max(vals) >= 10 * min(vals):
            set_scale("log")
            axis.set_minor_formatter(NullFormatter())


def file_stem(name: str) -> str:
    """A workload name as a file-name part."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_") or "workload"


def pareto_plot(summary: list[dict[str, Any]], path: Path) -> Path | None:
    """The Pareto plot of per-config summaries (`analysis.config_summary`); None if empty."""
    if not summary:
        return None
    axes = cost_axes(summary)
    cols = min(2, len(axes))
    rows = -(-len(axes) // cols)
    fig = _figure(5.2 * cols, 4.2 * rows)
    for ax, (cost, label) in zip(fig.subplots(rows, cols, squeeze=False).flat, axes.items()):
        xs = [s[cost] for s in summary]
        ax.scatter(xs, [s["inferences_per_s"] for s in summary], s=14, color="0.65", label="configs")
        front = pareto_front(summary, cost)
        fx, fy = [s[cost] for s in front], [s["inferences_per_s"] for s in front]
        ax.step(fx, fy, where="post", color="tab:red", lw=1.2)
        ax.scatter(fx, fy, s=26, color="tab:red", zorder=3, label="Pareto front")
        for s in front:
            ax.annotate(s["config_name"], (s[cost], s["inferences_per_s"]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        _scales(ax, xs, [s["inferences_per_s"] for s in summary])
        ax.margins(x=0.2, y=0.1)
        ax.set_xlabel(label)
        ax.set_ylabel("inferences/s at the config's clock")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{len(summary)} configs: throughput against cost")
    fig.savefig(path, dpi=110)
    return path


def _roofs(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return sorted({(int(r["macs_per_cycle"]), int(r["bus_bytes_per_cycle"])) for r in rows})


def roofline_plot(workload: str, rows: list[dict[str, Any]], path: Path) -> Path | None:
    """The roofline of one workload's ok rows; None if there is nothing to plot."""
    pts = [r for r in rows if r.get("status") == STATUS_OK and isinstance(r.get("arith_intensity"), float)
           and math.isfinite(r["arith_intensity"]) and r["arith_intensity"] > 0 and r["achieved_macs_per_cycle"] > 0]
    if not pts:
        return None
    from matplotlib import colormaps

    roofs = _roofs(pts)
    if len(roofs) <= 10:  # distinct colours; past ten, a gradient
        color = {rf: colormaps["tab10"](i) for i, rf in enumerate(roofs)}
    else:
        color = {rf: colormaps["viridis"](i / (len(roofs) - 1)) for i, rf in enumerate(roofs)}
    xs = [r["arith_intensity"] for r in pts] + [peak / bw for peak, bw in roofs]  # data and the roofs' knees
    lo, hi = min(xs) / 4, max(xs) * 4
    fig = _figure(6.4, 4.6)
    ax = fig.subplots()
    for (peak, bw), c in color.items():
        knee = peak / bw
        grid = sorted({lo, hi, min(max(knee, lo), hi)})
        ax.plot(grid, [min(peak, bw * x) for x in grid], color=c, lw=1,
                label=f"roof {peak} MAC/cycle, {bw} B/cycle" if len(roofs) <= 10 else None)
    for r in pts:
        ax.scatter(r["arith_intensity"], r["achieved_macs_per_cycle"], s=18, zorder=3,
                   color=color[(int(r["macs_per_cycle"]), int(r["bus_bytes_per_cycle"]))], edgecolors="k",
                   linewidths=0.3)
    ax.set_xscale("log")  # a roofline is read on log-log axes
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (MACs per DRAM byte moved)")
    ax.set_ylabel("achieved MACs per cycle")
    ax.set_title(f"{workload}: {len(pts)} configs")
    ax.grid(True, which="both", alpha=0.3)
    if len(roofs) <= 10:
        ax.legend(fontsize=7, loc="lower right")
    fig.savefig(path, dpi=110)
    return path


def write_plots(rows: list[dict[str, Any]], summary: list[dict[str, Any]], workloads: list[str],
                outdir: Path) -> list[Path]:
    """Every plot of a sweep into ``outdir``; the files written."""
    files = [pareto_plot(summary, outdir / "pareto.png")]
    for w in workloads:
        files.append(roofline_plot(w, [r for r in rows if r["workload"] == w], outdir / f"roofline_{file_stem(w)}.png"))
    return [f for f in files if f is not None]
