"""Compile an operator for the accelerator: workload + config (+ epilogue) to an
`AccelKernel`, with the tiling from the tuning log when one is given, else the
automatic choice."""

from __future__ import annotations

import time
from dataclasses import dataclass

from vta.compiler.tir.ops import Epilogue
from vta.compiler.tir.schedule import Schedule
from vta.isa import Config

from .lower import AccelKernel, lower
from .schedules import (
    Conv2d, ConvTiling, Dense, DenseTiling, conv2d_schedule, default_conv_tiling, default_dense_tiling, dense_schedule,
)

Workload = Conv2d | Dense
Tiling = ConvTiling | DenseTiling


@dataclass
class Built:
    """A compiled operator: the kernel, the schedule that made it, and how long it took."""

    kernel: AccelKernel
    schedule: Schedule
    tiling: Tiling
    compile_s: float


def schedule_for(wl: Workload, config: Config, tiling: Tiling, epilogue: Epilogue | None = None) -> Schedule:
    if isinstance(wl, Conv2d):
        return conv2d_schedule(wl, config, tiling, epilogue)  # type: ignore[arg-type]
    return dense_schedule(wl, config, tiling, epilogue)  # type: ignore[arg-type]


def default_tiling(wl: Workload, config: Config, epilogue: Epilogue | None = None) -> Tiling:
    if isinstance(wl, Conv2d):
        return default_conv_tiling(wl, config, epilogue)
    return default_dense_tiling(wl, config, epilogue)


def build(wl: Workload, config: Config, epilogue: Epilogue | None = None, tiling: Tiling | None = None,
          log: object | None = None) -> Built:
    """Compile ``wl`` for ``config``. The tiling is ``tiling`` if given, else the tuning
    log's best for this workload and config (``log``: a `TuningLog`), else the automatic one."""
    t0 = time.perf_counter()
    if tiling is None and log is not None:
        tiling = log.best(wl, config, epilogue)  # type: ignore[attr-defined]
    if tiling is None:
        tiling = default_tiling(wl, config, epilogue)
    sch = schedule_for(wl, config, tiling, epilogue)
    kernel = lower(sch.func, config, slots=tiling.slots)
    return Built(kernel, sch, tiling, time.perf_counter() - t0)
