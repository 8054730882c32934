"""From point rows to per-config summaries and Pareto fronts.

A config's performance is its throughput on the sweep's workload set: one "inference" runs
every workload of the sweep once (for ResNet-18 layers, the convolutions of one image), so
``inferences_per_s = clock_mhz * 1e6 / total_cycles``. A config counts only when every
workload succeeded on it.

Its cost is the synthesis estimate when there is one (LUT, FF, DSP, BRAM columns of the
`vta.hw.synth` report); otherwise two proxies computed from the config: MAC units
(``batch * block_in * block_out``, what the GEMM core's multipliers scale with) and on-chip
buffer bytes (uop + inp + wgt + acc, what BRAM scales with).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from .evaluate import STATUS_OK

RESOURCES = ("LUT", "FF", "DSP", "BRAM")
PROXIES = {"macs_per_cycle": "MAC units (batch×block_in×block_out)", "onchip_bytes": "on-chip buffer bytes"}
_RESOURCE_TOKENS = {
    "LUT": re.compile(r"luts?\d*|slice_?luts?|lcs?|lcells?"),
    "FF": re.compile(r"ffs?|dffs?|regs?|registers?|flip_?flops?|slice_?registers?"),
    "DSP": re.compile(r"dsps?\d*|dsp48\w*|mult\w*|mac\d+\w*"),
    "BRAM": re.compile(r"brams?\d*|ebrs?|dp16kd|ramb\w*|block_?rams?|sp256k"),
}
_NOT_COUNTS = re.compile(r"avail|total|capacity|max|pct|percent|util|frac|ratio|budget|device")


def resource_columns(columns: Iterable[str]) -> dict[str, str]:
    """The ``synth_*`` column that holds each resource count (LUT, FF, DSP, BRAM), matched on
    the words of its name; columns of totals, capacities or percentages are left out, and
    the shortest matching name wins."""
    found: dict[str, str] = {}
    for col in sorted(columns, key=len):
        if not col.startswith("synth_") or _NOT_COUNTS.search(col.lower()):
            continue
        words = col.lower()[len("synth_"):].split("_")
        joined = "_".join(words)
        for res, pat in _RESOURCE_TOKENS.items():
            if res not in found and (any(pat.fullmatch(w) for w in words) or pat.fullmatch(joined)):
                found[res] = col
    return found


def fmax_column(columns: Iterable[str]) -> str | None:
    """The synthesis report's Fmax column (MHz), if any."""
    cands = sorted((c for c in columns if c.startswith("synth_") and "fmax" in c.lower()), key=len)
    return cands[0] if cands else None


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def config_summary(rows: list[dict[str, Any]], workloads: list[str]) -> list[dict[str, Any]]:
    """One row per config whose every workload is ``ok``: total cycles, inferences/s at the
    config's clock (and at its Fmax when synthesis gave one), and the cost columns."""
    by_cfg: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_cfg.setdefault(r["config_key"], []).append(r)
    columns = {c for r in rows for c in r}
    res_cols = resource_columns(columns)
    fcol = fmax_column(columns)
    out = []
    for ck, group in by_cfg.items():
        ok = {r["workload"]: r for r in group if r.get("status") == STATUS_OK}
        if any(w not in ok for w in workloads):
            continue
        first = next(iter(ok.values()))
        total = sum(int(ok[w]["cycles"]) for w in workloads)
        s: dict[str, Any] = {"config_key": ck, "config_name": first["config_name"], "clock_mhz": first["clock_mhz"],
                             "total_cycles": total, "inferences_per_s": first["clock_mhz"] * 1e6 / total,
                             "macs_per_cycle": first["macs_per_cycle"], "onchip_bytes": first["onchip_bytes"]}
        for res, col in res_cols.items():
            s[res] = first.get(col) if _number(first.get(col)) is not None else None
        fmax = _number(first.get(fcol)) if fcol else None
        if fmax:
            s["fmax_mhz"] = fmax
            s["inferences_per_s_fmax"] = fmax * 1e6 / total
        out.append(s)
    return out


def cost_axes(summary: list[dict[str, Any]]) -> dict[str, str]:
    """Cost column -> axis label: the synthesis resources every config has, else the proxies."""
    res = {r: f"{r} (synthesis estimate)" for r in RESOURCES
           if summary and all(_number(s.get(r)) is not None for s in summary)}
    return res or dict(PROXIES)


def pareto_front(items: list[dict[str, Any]], cost: str, perf: str = "inferences_per_s") -> list[dict[str, Any]]:
    """The items no other item beats: none has lower-or-equal ``cost`` and higher ``perf``
    (ties on both keep the first). Sorted by cost."""
    valid = [s for s in items if _number(s.get(cost)) is not None and _number(s.get(perf)) is not None]
    valid.sort(key=lambda s: (s[cost], -s[perf]))
    front: list[dict[str, Any]] = []
    best = -math.inf
    for s in valid:
        if s[perf] > best:
            front.append(s)
            best = s[perf]
    return front
