"""What a worker does for one point, and for one config's synthesis estimate.

Both functions take and return plain dicts (JSON-able values only), so they run the same
in this process, in a local worker process, or on a Dask worker. Neither raises for a bad
point: an invalid config comes back with ``status = "invalid"`` and the config's own
validation message, any other failure with ``status = "error"`` and the exception, so one
point never stops a sweep.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from vta.isa import Config
from vta.isa.errors import ConfigError, VTAError

from .workloads import WorkloadSpec, epilogue_of, operator

STATUS_OK, STATUS_INVALID, STATUS_ERROR = "ok", "invalid", "error"
SYNTH_MODULE, FMAX_MODULE = "vta.hw.synth", "vta.hw.fmax"
BUFFERS = ("uop", "inp", "wgt", "acc")
REPORT_KEY = "_report"  # a synthesis row's full report (JSON-able), kept out of the table


def error_text(e: BaseException) -> str:
    """One line: the exception type and message, and where it was raised."""
    msg = " ".join(str(e).split()) or repr(e)
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {msg}{where}"


def config_metrics(cfg: Config) -> dict[str, Any]:
    """Derived numbers of a config that the tables and plots use: peak MACs per cycle (the
    compute roof and the area proxy), bus bytes per cycle (the DRAM roof), on-chip buffer
    bytes (the memory-area proxy) and peak GOPS at the config's clock."""
    return {"config_name": cfg.name, "macs_per_cycle": cfg.macs_per_cycle, "bus_bytes_per_cycle": cfg.bus_bytes,
            "onchip_bytes": sum(getattr(cfg, f"{b}_buffer_bytes") for b in BUFFERS),
            "peak_gops": cfg.macs_per_cycle * 2 * cfg.clock_mhz / 1e3}


def performance(cycles: int, macs: int, dram_bytes: int, cfg: Config) -> dict[str, Any]:
    """Per-point derived metrics: achieved MACs per cycle, arithmetic intensity (workload
    MACs per DRAM byte actually moved), latency and throughput at the config's clock."""
    return {"achieved_macs_per_cycle": macs / cycles if cycles else 0.0,
            "arith_intensity": macs / dram_bytes if dram_bytes else float("nan"),
            "latency_us": cycles / cfg.clock_mhz, "inferences_per_s": cfg.clock_mhz * 1e6 / cycles if cycles else 0.0}


def _device(target: str, cfg: Config, dram_bytes: int, check_races: bool):  # type: ignore[no-untyped-def]
    from vta.runtime import open_device

    opts: dict[str, Any] = {"dram_bytes": max(1 << 24, dram_bytes)}
    if target == "fsim":
        opts["check_races"] = check_races
    return open_device(target, cfg, **opts)


def measure_operator(spec: WorkloadSpec, cfg: Config, target: str, verify: bool) -> dict[str, Any]:
    """Compile a conv2d/dense with the automatic tiling and run it once on ``target``.

    Cycles do not depend on the data, so inputs are zeros unless ``verify`` is set: then
    they are random, the output is compared with the numpy fixed-point reference
    (``bit_exact``), and fsim checks races too.
    """
    from vta.compiler.accel.build import build
    from vta.compiler.accel.reference import operands
    from vta.runtime.execute import run_program

    wl = operator(spec, cfg.batch)
    ep = epilogue_of(spec)
    built = build(wl, cfg, ep)
    kernel = built.kernel
    expect = None
    if verify:
        ins, expect = operands(wl, cfg, ep)
        prog = kernel.program(*ins)
    else:
        prog = kernel.program(**{s.name: np.zeros(s.shape, np.int64) for s in kernel.segments if not s.output})
    t0 = time.perf_counter()
    res = run_program(prog, _device(target, cfg, prog.dram_bytes, verify))
    st = res.stats
    row: dict[str, Any] = {
        "cycles": st.cycles, "macs": wl.macs, "gemm_utilization": st.gemm_utilization, "dram_bytes": st.dram_bytes,
        "dram_read_bytes": sum(st.dram_read_bytes.values()), "dram_write_bytes": sum(st.dram_write_bytes.values()),
        "insns": st.insns, "gemm_uops": st.gemm_uops, "alu_uops": st.alu_uops,
        "tiling": ",".join(f"{k}={v}" for k, v in built.tiling.__dict__.items()),
        "compile_s": built.compile_s, "sim_s": time.perf_counter() - t0}
    if expect is not None:
        row["bit_exact"] = bool(np.array_equal(res.outputs[kernel.outputs()[0]], expect))
    return row


def _model_feeds(params: dict[str, Any]) -> dict[str, np.ndarray]:
    from vta.model import random_array, random_inputs

    feeds = random_inputs(params["path"])
    rng = np.random.default_rng(1)
    for name, shape in (params.get("shapes") or {}).items():
        if name not in feeds:
            raise VTAError(f"the model has no input {name!r}; inputs: {', '.join(feeds)}")
        feeds[name] = random_array(rng, str(feeds[name].dtype), tuple(shape))
    return feeds


def measure_model(spec: WorkloadSpec, cfg: Config, target: str) -> dict[str, Any]:
    """Compile an ONNX model for ``cfg`` (calibrated on random inputs) and run it once; the
    numbers are the accelerator operators' totals (host operators are not counted)."""
    from vta.model import compile_model, run_model

    feeds = _model_feeds(spec.params)
    t0 = time.perf_counter()
    exe = compile_model(spec.params["path"], feeds, cfg, [feeds], None, lambda text: None)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = run_model(exe, feeds, target)
    accel = [o for o in run.report.ops if o.cycles]
    cycles = sum(o.cycles or 0 for o in accel)
    done = sum((o.gemm_utilization or 0.0) * (o.cycles or 0) for o in accel)  # MACs the core did, over its peak
    return {"cycles": cycles, "macs": sum(s.node.attrs["workload"].macs for s in exe.steps if s.kind == "accel"),
            "gemm_utilization": done / cycles if cycles else 0.0,
            "dram_bytes": sum(o.dram_bytes or 0 for o in accel), "accel_ops": len(accel),
            "compile_s": compile_s, "sim_s": time.perf_counter() - t0}


def point_row(payload: dict[str, Any]) -> dict[str, Any]:
    """The identifying columns of a point's row: key, workload, target and every config field."""
    wl = payload["workload"]
    return {"key": payload["key"], "config_key": payload["config_key"], "workload": wl["name"], "kind": wl["kind"],
            "target": payload["target"], **payload["config"]}


def evaluate_point(payload: dict[str, Any]) -> dict[str, Any]:
    """Measure one point (a `Point.payload`): validate the config, compile, run; the row."""
    t0 = time.perf_counter()
    row = point_row(payload)
    try:
        cfg = Config(**payload["config"])
    except (ConfigError, TypeError) as e:
        return {**row, "status": STATUS_INVALID, "error": error_text(e), "wall_s": time.perf_counter() - t0}
    row.update(config_metrics(cfg))
    spec = WorkloadSpec.from_dict(payload["workload"])
    try:
        if spec.kind == "onnx":
            measured = measure_model(spec, cfg, payload["target"])
        else:
            measured = measure_operator(spec, cfg, payload["target"], bool(payload.get("verify")))
        row.update(measured)
        row.update(performance(measured["cycles"], measured["macs"], measured["dram_bytes"], cfg))
        row["status"] = STATUS_OK
        if measured.get("bit_exact") is False:
            row.update(status=STATUS_ERROR, error="the output differs from the numpy reference")
    except Exception as e:  # noqa: BLE001 - any failure of one point is that point's result, not the sweep's
        row.update(status=STATUS_ERROR, error=error_text(e))
    row["wall_s"] = time.perf_counter() - t0
    return row


# ---- synthesis (vta.hw.synth) ---------------------------------------------------------------------

def synth_module() -> Any:
    """`vta.hw.synth`, or a `VTAError` saying why it cannot be used."""
    try:
        mod = importlib.import_module(SYNTH_MODULE)
    except ImportError as e:
        raise VTAError(f"--synth needs {SYNTH_MODULE}, which cannot be imported here ({e})") from None
    if not callable(getattr(mod, "estimate", None)):
        raise VTAError(f"--synth needs {SYNTH_MODULE}.estimate(config, family), which the module does not define")
    return mod


def fmax_module() -> Any:
    """`vta.hw.fmax`, or a `VTAError` saying why it cannot be used."""
    try:
        return importlib.import_module(FMAX_MODULE)
    except ImportError as e:
        raise VTAError(f"--fmax needs {FMAX_MODULE}, which cannot be imported here ({e})") from None


def scalar_columns(d: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The scalar entries of a report as ``prefix_key`` columns (nested tables and lists,
    such as per-module breakdowns, stay in the full report)."""
    return {f"{prefix}_{k}": v for k, v in d.items() if v is None or isinstance(v, (bool, int, float, str))}


def _as_dict(report: Any) -> dict[str, Any]:
    if isinstance(report, dict):
        return report
    if callable(getattr(report, "to_dict", None)):
        return dict(report.to_dict())
    raise VTAError(f"{SYNTH_MODULE} returned a {type(report).__name__} without to_dict()")


def synthesize(payload: dict[str, Any]) -> dict[str, Any]:
    """Synthesis estimate of one config (``config``, ``family``, ``fmax``): the scalars of
    `vta.hw.synth.estimate(config, family).to_dict()` as ``synth_*`` columns, and the whole
    report under ``REPORT_KEY`` (the runner writes it to a JSON file, not to the table).
    With ``fmax``, `vta.hw.fmax.fmax` (place and route out of context) adds ``synth_fmax_mhz``,
    ``synth_fmax_device`` and ``synth_meets_timing``."""
    t0 = time.perf_counter()
    row: dict[str, Any] = {"key": payload["key"], "config_key": payload["config_key"], "family": payload["family"]}
    try:
        cfg = Config(**payload["config"])
        mod = synth_module()
        report = _as_dict(mod.estimate(cfg, payload["family"]))
        row.update(scalar_columns(report, "synth"))
        if payload.get("fmax"):
            f = fmax_module().fmax(cfg, payload["family"])
            row.update(synth_fmax_mhz=f.fmax_mhz, synth_fmax_device=f.device, synth_meets_timing=f.meets_timing)
            report = {**report, "fmax": f.to_dict()}
        row[REPORT_KEY] = report
        row["status"] = STATUS_OK
    except Exception as e:  # noqa: BLE001 - a failed estimate is recorded for its config
        row.update(status=STATUS_ERROR, error=error_text(e))
    row["wall_s"] = time.perf_counter() - t0
    return row


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_allocator_checked = False


def tune_allocator() -> bool:
    """Undo a tiny glibc trim threshold in this process (once); True when it did.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` to hand memory back to
    the OS. That also pins glibc's mmap threshold at 128 KiB, so each of a point's multi-MiB
    arrays (the simulated DRAM, the scratchpads) is a fresh mmap whose pages fault in again:
    points ran twice as slowly on Dask workers as in a plain process. A sweep worker keeps
    up to these thresholds (64 MiB mmap, 256 MiB trim) instead.
    """
    global _allocator_checked
    if _allocator_checked:
        return False
    _allocator_checked = True
    if not os.environ.get("MALLOC_TRIM_THRESHOLD_") or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 1 << 26)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 28))


def run_task(task: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """Dispatch ``(kind, payload)``: 'point' or 'synth'. The one function executors ship."""
    tune_allocator()
    kind, payload = task
    if kind == "point":
        return evaluate_point(payload)
    if kind == "synth":
        return synthesize(payload)
    raise ValueError(f"unknown sweep task {kind!r}")
